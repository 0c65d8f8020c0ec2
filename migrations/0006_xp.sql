-- depends: 0005_tasks
-- XP: an append-only ledger of awards for completed, paid-out tasks. users.xp_total and level
-- follow the ledger, kept by its trigger (INV-1, INV-5, INV-7).

-- Level 1–10 from total XP (thresholds 0, 100, 300, 700, 1500, 2700, 4500, 7000, 10500, 18500).
CREATE FUNCTION level_for_xp(xp bigint) RETURNS smallint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN xp >= 18500 THEN 10 WHEN xp >= 10500 THEN 9 WHEN xp >= 7000 THEN 8 WHEN xp >= 4500 THEN 7
        WHEN xp >= 2700 THEN 6 WHEN xp >= 1500 THEN 5 WHEN xp >= 700 THEN 4 WHEN xp >= 300 THEN 3
        WHEN xp >= 100 THEN 2 ELSE 1
    END::smallint
$$;

-- The streak multiplier for consecutive active days: 3 → 1.1, 7 → 1.2, 14 → 1.3, 30+ → 1.5.
CREATE FUNCTION xp_streak_multiplier(streak_days integer) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN streak_days >= 30 THEN 1.5 WHEN streak_days >= 14 THEN 1.3
        WHEN streak_days >= 7 THEN 1.2 WHEN streak_days >= 3 THEN 1.1 ELSE 1.0
    END
$$;

-- The decay: 1 / (1 + log10(1 + xp_total / 1000)). The logarithm is taken in double precision
-- (80× faster than numeric's) and the result handed on as numeric, so that the rest of the
-- award is exact and rounds half away from zero: a decay of exactly 1 keeps 1.5 × 7 = 10.5 → 11.
CREATE FUNCTION xp_decay(xp_total bigint) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (1 / (1 + log(1 + xp_total::double precision / 1000)))::numeric
$$;

-- The base of an award: max(10, the price in whole dollars).
CREATE FUNCTION xp_base(price_cents bigint) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT greatest(10, price_cents / 100)::integer $$;

-- An award: base × streak × decay, rounded, at least 1.
CREATE FUNCTION xp_award(price_cents bigint, streak_days integer, xp_total bigint) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT greatest(1, round(xp_base(price_cents) * xp_streak_multiplier(streak_days) * xp_decay(xp_total)))::integer
$$;

CREATE TABLE xp_ledger (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id           uuid         NOT NULL REFERENCES users (id),
    task_id           uuid         NOT NULL REFERENCES tasks (id),
    escrow_id         uuid         NOT NULL REFERENCES escrows (id),
    -- how the award was computed (filled in by the database)
    amount            integer      NOT NULL CONSTRAINT xp_ledger_amount_positive CHECK (amount > 0),
    base              integer      NOT NULL,
    streak_days       integer      NOT NULL,
    streak_multiplier numeric(3,2) NOT NULL,
    decay             numeric      NOT NULL,
    xp_before         bigint       NOT NULL,
    xp_after          bigint       NOT NULL,
    level_before      smallint     NOT NULL,
    level_after       smallint     NOT NULL,
    created_at        timestamptz  NOT NULL DEFAULT now(),
    CONSTRAINT xp_ledger_adds_up CHECK (xp_after = xp_before + amount),
    -- INV-5: at most one XP entry per escrow
    CONSTRAINT xp_ledger_one_per_escrow_hx103 UNIQUE (escrow_id)
);
CREATE INDEX xp_ledger_user_idx ON xp_ledger (user_id, created_at DESC);
COMMENT ON INDEX xp_ledger_user_idx IS 'A user''s XP history, newest first.';
CREATE INDEX xp_ledger_task_idx ON xp_ledger (task_id);
COMMENT ON INDEX xp_ledger_task_idx IS 'Lookups of a task''s award.';

CREATE FUNCTION xp_ledger_award() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    escrow_state  text;
    escrow_task   uuid;
    task_price    bigint;
    task_worker   uuid;
    cur_xp        bigint;
    cur_streak    integer;
    cur_level     smallint;
    award         integer;
BEGIN
    SELECT e.state, e.task_id INTO escrow_state, escrow_task FROM escrows e WHERE e.id = NEW.escrow_id;
    -- INV-1: XP needs a released escrow (a split or a refund earns none).
    IF escrow_state IS DISTINCT FROM 'RELEASED' THEN
        PERFORM hx_raise('HX101', format('escrow %s is %s, not RELEASED', NEW.escrow_id, COALESCE(escrow_state, 'missing')));
    END IF;
    SELECT t.price_cents, t.worker_id INTO task_price, task_worker FROM tasks t WHERE t.id = escrow_task;
    IF escrow_task <> NEW.task_id OR task_worker IS DISTINCT FROM NEW.user_id THEN
        PERFORM hx_raise('HX101', 'XP goes to the worker of the task whose escrow was released');
    END IF;
    SELECT u.xp_total, u.streak_days, u.level INTO cur_xp, cur_streak, cur_level
      FROM users u WHERE u.id = NEW.user_id FOR UPDATE;
    award := xp_award(task_price, cur_streak, cur_xp);
    IF NEW.amount IS NOT NULL AND NEW.amount <> award THEN
        PERFORM hx_raise('HX101', format('the award is %s XP by the formula, not %s', award, NEW.amount));
    END IF;
    NEW.amount := award;
    NEW.base := xp_base(task_price);
    NEW.streak_days := cur_streak;
    NEW.streak_multiplier := xp_streak_multiplier(cur_streak);
    NEW.decay := xp_decay(cur_xp);
    NEW.xp_before := cur_xp;
    NEW.xp_after := cur_xp + award;
    NEW.level_before := cur_level;
    NEW.level_after := level_for_xp(NEW.xp_after);
    NEW.created_at := now();
    -- users.xp_total = the ledger's sum, by construction (this UPDATE runs one trigger level deeper)
    UPDATE users SET xp_total = NEW.xp_after, level = NEW.level_after WHERE id = NEW.user_id;
    RETURN NEW;
END $$;
CREATE TRIGGER xp_ledger_award BEFORE INSERT ON xp_ledger FOR EACH ROW EXECUTE FUNCTION xp_ledger_award();
CREATE TRIGGER xp_ledger_append_only BEFORE UPDATE OR DELETE ON xp_ledger
    FOR EACH ROW EXECUTE FUNCTION reject_ledger_change();
CREATE TRIGGER xp_ledger_no_truncate BEFORE TRUNCATE ON xp_ledger
    FOR EACH STATEMENT EXECUTE FUNCTION reject_ledger_change();
