-- depends: 0035_ratings
-- Admin tools and account standing (DOMAIN.md "Admin actions", INV-17). 0032 added
-- users.account_status, account_active() and the append-only admin_actions; this migration
-- makes the standing count everywhere the database decides:
--   - BANNED is final, and every change of standing is stamped (account_status_at);
--   - a suspended or banned account is not eligible for any task (is_eligible calls
--     account_active), cannot post or take a task, and cannot open a session (HX405), checked
--     under a share lock on the user's row, so a suspension racing an accept, a post or a
--     sign-in either sees it or is seen by it;
--   - the last active admin cannot lose admin rights (HX206), checked under one advisory lock
--     so that two admins revoking each other cannot both succeed.

-- An account's standing: ACTIVE ⇄ SUSPENDED, either → BANNED, and BANNED stays.
CREATE FUNCTION users_account_status_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.account_status IS DISTINCT FROM OLD.account_status THEN
        IF OLD.account_status = 'BANNED' THEN
            PERFORM hx_raise('HX003', format('user %s is banned: a ban is final', OLD.id));
        END IF;
        NEW.account_status_at := now();
    ELSIF NEW.account_status_at IS DISTINCT FROM OLD.account_status_at THEN
        PERFORM hx_raise('HX003', 'account_status_at is stamped by a change of standing');
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER users_account_status_guard BEFORE UPDATE OF account_status, account_status_at ON users
    FOR EACH ROW EXECUTE FUNCTION users_account_status_guard();

-- Whether `who` may act now, read under a share lock on their row: a concurrent change of
-- standing (which updates the row) is waited for, and then seen. HX405 when not ACTIVE.
CREATE FUNCTION require_active_account(who uuid) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    standing text;
BEGIN
    SELECT account_status INTO standing FROM users WHERE id = who FOR SHARE;
    IF standing IS DISTINCT FROM 'ACTIVE' THEN
        PERFORM hx_raise('HX405', format('account %s is %s', who, COALESCE(lower(standing), 'unknown')));
    END IF;
END $$;
COMMENT ON FUNCTION require_active_account(uuid) IS 'INV-17: HX405 unless the account is ACTIVE (race-free: locks the user row FOR SHARE).';

-- INV-17 on tasks: only an active account posts a task or takes one. Named to fire before
-- tasks_transition_guard (triggers of one event fire in name order), so that a suspended worker
-- hears HX405 rather than an eligibility reason.
CREATE FUNCTION tasks_account_active() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM require_active_account(NEW.poster_id);
    ELSE
        PERFORM require_active_account(NEW.worker_id);
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER tasks_account_active_on_post BEFORE INSERT ON tasks
    FOR EACH ROW EXECUTE FUNCTION tasks_account_active();
CREATE TRIGGER tasks_account_active_on_accept BEFORE UPDATE OF state, worker_id ON tasks
    FOR EACH ROW WHEN (OLD.state = 'OPEN' AND NEW.state = 'ACCEPTED' AND NEW.worker_id IS NOT NULL)
    EXECUTE FUNCTION tasks_account_active();

-- INV-17 on sign-in: no new session for an account that is not active (sign-in answers HX405).
CREATE FUNCTION sessions_account_active() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM require_active_account(NEW.user_id);
    RETURN NEW;
END $$;
CREATE TRIGGER sessions_account_active BEFORE INSERT ON sessions
    FOR EACH ROW EXECUTE FUNCTION sessions_account_active();

-- It only reads: parallel safe like the predicate that calls it (0032 left the default, unsafe).
ALTER FUNCTION account_active(uuid) PARALLEL SAFE;

-- INV-17 in THE eligibility predicate: the worker's account is active. account_active() of the
-- profile's user is the same for every task of a feed query, so the planner evaluates it once
-- per query (a one-time filter), not once per task.
CREATE OR REPLACE FUNCTION is_eligible(t tasks, p capability_profiles) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT t.state = 'OPEN'
       AND t.worker_id IS NULL
       AND t.funded_at IS NOT NULL
       AND p.user_id IS NOT NULL
       AND t.poster_id <> p.user_id
       AND p.location_state = t.location_state
       AND p.trust_tier >= t.required_trust_tier
       AND (t.required_trade IS NULL OR (p.trades ->> t.required_trade)::timestamptz > now())
       AND (NOT t.insurance_required OR p.insurance_valid_until > now())
       AND (NOT t.background_check_required OR p.background_check_valid_until > now())
       AND COALESCE(account_active(p.user_id), false)
$$;

CREATE OR REPLACE FUNCTION ineligibility_reason(t tasks, p capability_profiles) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN is_eligible(t, p) THEN NULL
        WHEN p.user_id IS NULL THEN 'no capability profile yet'
        WHEN NOT COALESCE(account_active(p.user_id), false) THEN 'the account is suspended or banned'
        WHEN t.state <> 'OPEN' OR t.worker_id IS NOT NULL THEN 'the task is not open'
        WHEN t.funded_at IS NULL THEN 'the task is not funded'
        WHEN t.poster_id = p.user_id THEN 'this is your own task'
        WHEN p.location_state IS DISTINCT FROM t.location_state THEN 'the task is in another state'
        WHEN p.trust_tier < t.required_trust_tier THEN 'the task needs a higher trust tier'
        WHEN t.required_trade IS NOT NULL
             AND NOT COALESCE((p.trades ->> t.required_trade)::timestamptz > now(), false)
            THEN format('the task needs a verified %s licence', t.required_trade)
        WHEN t.insurance_required THEN 'the task needs valid insurance'
        ELSE 'the task needs a valid background check'
    END
$$;

-- The last active admin keeps admin rights (HX206). Every change of the admin set takes one
-- transaction-scoped advisory lock first and counts after it, so of two admins revoking each
-- other at once the second sees the first's commit and is refused.
CREATE FUNCTION users_keep_an_admin() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('hustle.admins'));
    IF NOT EXISTS (SELECT 1 FROM users
                    WHERE is_admin AND account_status = 'ACTIVE' AND id <> NEW.id) THEN
        PERFORM hx_raise('HX206', 'the last active admin cannot lose admin rights');
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER users_keep_an_admin BEFORE UPDATE OF is_admin, account_status ON users
    FOR EACH ROW
    WHEN (OLD.is_admin AND OLD.account_status = 'ACTIVE'
          AND (NOT NEW.is_admin OR NEW.account_status <> 'ACTIVE'))
    EXECUTE FUNCTION users_keep_an_admin();

CREATE INDEX users_admins_idx ON users (id) WHERE is_admin;
COMMENT ON INDEX users_admins_idx IS 'The admins (few): the last-admin check and the audit read them without a scan.';
CREATE INDEX users_not_active_idx ON users (account_status) WHERE account_status <> 'ACTIVE';
COMMENT ON INDEX users_not_active_idx IS 'Suspended and banned accounts (few): the audit of INV-17 reads them without a scan.';
CREATE INDEX trust_ledger_user_keyset_idx ON trust_ledger (user_id, created_at DESC, id DESC);
COMMENT ON INDEX trust_ledger_user_keyset_idx IS 'ListUserLedgers (TRUST): a user''s trust history, newest first, keyset (created_at, id).';
CREATE INDEX xp_ledger_user_keyset_idx ON xp_ledger (user_id, created_at DESC, id DESC);
COMMENT ON INDEX xp_ledger_user_keyset_idx IS 'ListUserLedgers (XP): a user''s XP history, newest first, keyset (created_at, id).';
CREATE INDEX admin_actions_newest_idx ON admin_actions (created_at DESC, id DESC);
COMMENT ON INDEX admin_actions_newest_idx IS 'ListAdminActions: the whole log, newest first (keyset on created_at, id).';
