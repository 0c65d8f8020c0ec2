-- depends: 0034_messages
-- Ratings and trust tiers (DOMAIN.md "Ratings", "Trust-tier progression"; INV-13, INV-14, INV-15).
--
-- A rating is one party's verdict on the other after a COMPLETED task: the poster rates the
-- worker (ratee_role WORKER), the worker rates the poster (ratee_role POSTER). Ratings are blind
-- until both exist (or the window closes and rating.close adds the missing ones): then the
-- database reveals both together. Every rule is here, so that raw SQL meets the same typed
-- errors (HX codes as SQLSTATE or in constraint names) as the API.

-- (Functions a CHECK calls name the functions they call with their schema: pg_restore, which
-- `python -m server restore` uses, loads rows with an empty search_path.)
-- The fixed tag list, per direction: POSITIVE, NEGATIVE, or NULL (not a tag of that direction).
-- server/domain/ratings.py holds the same list for its error messages; a test compares them.
CREATE FUNCTION rating_tag_kind(ratee_role text, tag text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN ratee_role = 'WORKER' AND tag IN ('ON_TIME', 'QUALITY_WORK', 'COMMUNICATIVE', 'FRIENDLY',
                                               'ABOVE_AND_BEYOND') THEN 'POSITIVE'
        WHEN ratee_role = 'WORKER' AND tag IN ('LATE', 'POOR_QUALITY', 'UNRESPONSIVE', 'UNPROFESSIONAL',
                                               'INCOMPLETE') THEN 'NEGATIVE'
        WHEN ratee_role = 'POSTER' AND tag IN ('CLEAR_INSTRUCTIONS', 'PROMPT_APPROVAL', 'COMMUNICATIVE',
                                               'FRIENDLY', 'ACCURATE_DESCRIPTION') THEN 'POSITIVE'
        WHEN ratee_role = 'POSTER' AND tag IN ('UNCLEAR_INSTRUCTIONS', 'SLOW_APPROVAL', 'UNRESPONSIVE',
                                               'RUDE', 'INACCURATE_DESCRIPTION') THEN 'NEGATIVE'
    END
$$;

-- Every tag is one of the direction's, each at most once, at most 5.
CREATE FUNCTION rating_tags_valid(ratee_role text, tags text[]) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT cardinality(tags) <= 5
       AND (SELECT count(DISTINCT t) FROM unnest(tags) t) = cardinality(tags)
       AND NOT EXISTS (SELECT 1 FROM unnest(tags) t WHERE public.rating_tag_kind(ratee_role, t) IS NULL)
$$;

CREATE FUNCTION rating_tags_negative(ratee_role text, tags text[]) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT EXISTS (SELECT 1 FROM unnest(tags) t WHERE public.rating_tag_kind(ratee_role, t) = 'NEGATIVE')
$$;

CREATE TABLE ratings (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    task_id     uuid        NOT NULL REFERENCES tasks (id),
    rater_id    uuid        NOT NULL REFERENCES users (id),
    -- derived from the task by ratings_insert_guard: the other party, and which side they were on
    ratee_id    uuid        NOT NULL REFERENCES users (id),
    ratee_role  text        NOT NULL CONSTRAINT ratings_ratee_role CHECK (ratee_role IN ('WORKER', 'POSTER')),
    stars       smallint    NOT NULL CONSTRAINT ratings_stars_hx810 CHECK (stars BETWEEN 1 AND 5),
    comment     text        CONSTRAINT ratings_comment_length_hx811 CHECK (char_length(comment) BETWEEN 1 AND 500),
    tags        text[]      NOT NULL DEFAULT '{}',
    -- added by rating.close for a direction nobody rated within the window: 5 stars, nothing said
    is_auto     boolean     NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    -- set once, for both ratings of the task together, when the second one exists
    revealed_at timestamptz,
    CONSTRAINT ratings_tags_hx301 CHECK (rating_tags_valid(ratee_role, tags)),
    CONSTRAINT ratings_negative_tags_need_three_stars_hx301
        CHECK (stars <= 3 OR NOT rating_tags_negative(ratee_role, tags)),
    CONSTRAINT ratings_auto_is_five_silent_stars_hx301
        CHECK (NOT is_auto OR (stars = 5 AND comment IS NULL AND cardinality(tags) = 0)),
    CONSTRAINT ratings_not_oneself_hx802 CHECK (rater_id <> ratee_id),
    CONSTRAINT ratings_revealed_after_created CHECK (revealed_at IS NULL OR revealed_at >= created_at)
);
-- INV-13: one rating per task and rater (so one per direction).
CREATE UNIQUE INDEX ratings_task_rater_unique_hx303 ON ratings (task_id, rater_id);
COMMENT ON INDEX ratings_task_rater_unique_hx303 IS 'INV-13: one rating per (task, rater); GetTaskRatings reads a task''s two by it.';
CREATE INDEX ratings_summary_idx ON ratings (ratee_id, ratee_role) INCLUDE (stars, is_auto)
    WHERE revealed_at IS NOT NULL;
COMMENT ON INDEX ratings_summary_idx IS 'GetRatingSummary and trust.evaluate: a user''s revealed ratings per role, index-only.';

-- The rating windows still open or not yet closed by rating.close: one row per COMPLETED task
-- until it has both ratings. rating.close reads the due ones by closes_at.
CREATE TABLE rating_windows (
    task_id   uuid        PRIMARY KEY REFERENCES tasks (id),
    closes_at timestamptz NOT NULL
);
CREATE INDEX rating_windows_closes_idx ON rating_windows (closes_at);
COMMENT ON INDEX rating_windows_closes_idx IS 'rating.close: windows due, oldest first.';
-- Tasks completed within the last 7 days before this migration get their window too.
INSERT INTO rating_windows (task_id, closes_at)
SELECT id, completed_at + interval '7 days' FROM tasks
 WHERE state = 'COMPLETED' AND worker_id IS NOT NULL AND completed_at > now() - interval '7 days';

-- INV-13: a COMPLETED task, one of its two parties, an open window (7 days from completed_at)
-- unless automatic (and automatic only once it closed). The task's row lock orders the two
-- parties' inserts, so that the second one sees the first and reveals both.
CREATE FUNCTION ratings_insert_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    t tasks%ROWTYPE;
BEGIN
    SELECT * INTO t FROM tasks WHERE id = NEW.task_id FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        PERFORM hx_raise('HX302', format('task %s does not exist', NEW.task_id));
    END IF;
    IF t.state <> 'COMPLETED' THEN
        PERFORM hx_raise('HX807', format('task %s is %s: only a completed task is rated', t.id, t.state));
    END IF;
    IF NEW.rater_id = t.poster_id THEN
        NEW.ratee_id := t.worker_id;
        NEW.ratee_role := 'WORKER';
    ELSIF NEW.rater_id = t.worker_id THEN
        NEW.ratee_id := t.poster_id;
        NEW.ratee_role := 'POSTER';
    ELSE
        PERFORM hx_raise('HX802', 'only the task''s poster and worker rate it');
    END IF;
    IF NEW.is_auto THEN
        IF now() < t.completed_at + interval '7 days' THEN
            PERFORM hx_raise('HX003', 'an automatic rating is added only once the rating window has closed');
        END IF;
    ELSIF now() >= t.completed_at + interval '7 days' THEN
        PERFORM hx_raise('HX808', 'the rating window closed 7 days after the task was completed');
    END IF;
    IF NEW.revealed_at IS NOT NULL THEN
        PERFORM hx_raise('HX809', 'a rating is revealed by the database once both exist');
    END IF;
    NEW.created_at := now();
    RETURN NEW;
END $$;
CREATE TRIGGER ratings_insert_guard BEFORE INSERT ON ratings
    FOR EACH ROW EXECUTE FUNCTION ratings_insert_guard();

-- Both directions exist: reveal them together, and the window has nothing left to close.
CREATE FUNCTION ratings_reveal() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT count(*) FROM ratings WHERE task_id = NEW.task_id) = 2 THEN
        UPDATE ratings SET revealed_at = now() WHERE task_id = NEW.task_id AND revealed_at IS NULL;
        DELETE FROM rating_windows WHERE task_id = NEW.task_id;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER ratings_reveal AFTER INSERT ON ratings
    FOR EACH ROW EXECUTE FUNCTION ratings_reveal();

-- INV-14: immutable; the one change is the reveal (revealed_at set once, when both exist).
CREATE FUNCTION ratings_update_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF ROW(NEW.*) IS NOT DISTINCT FROM ROW(OLD.*) THEN
        RETURN NEW;
    END IF;
    IF (NEW.id, NEW.task_id, NEW.rater_id, NEW.ratee_id, NEW.ratee_role, NEW.stars, NEW.comment, NEW.tags,
        NEW.is_auto, NEW.created_at)
       IS DISTINCT FROM
       (OLD.id, OLD.task_id, OLD.rater_id, OLD.ratee_id, OLD.ratee_role, OLD.stars, OLD.comment, OLD.tags,
        OLD.is_auto, OLD.created_at)
       OR OLD.revealed_at IS NOT NULL OR NEW.revealed_at IS NULL THEN
        PERFORM hx_raise('HX809', format('rating %s cannot change (only its reveal is recorded, once)', OLD.id));
    END IF;
    IF (SELECT count(*) FROM ratings WHERE task_id = NEW.task_id) < 2 THEN
        PERFORM hx_raise('HX809', 'a rating is revealed only together with the other party''s');
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER ratings_update_guard BEFORE UPDATE ON ratings
    FOR EACH ROW EXECUTE FUNCTION ratings_update_guard();

CREATE FUNCTION ratings_no_delete() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM hx_raise('HX809', format('ratings are never deleted: %s is not allowed', TG_OP));
    RETURN NULL;
END $$;
CREATE TRIGGER ratings_no_delete BEFORE DELETE ON ratings
    FOR EACH ROW EXECUTE FUNCTION ratings_no_delete();
CREATE TRIGGER ratings_no_truncate BEFORE TRUNCATE ON ratings
    FOR EACH STATEMENT EXECUTE FUNCTION ratings_no_delete();

-- A task that closes with a worker: its rating window opens (COMPLETED), and the worker's trust
-- tier is evaluated through the outbox (in this transaction: never forgotten). `event` tells
-- trust.evaluate what happened: a completion, a dispute lost (REFUND) or a no-show (the poster
-- cancelled the accepted task). An admin's cancellation is neither.
CREATE FUNCTION tasks_after_close() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    event text;
BEGIN
    IF NEW.state = 'COMPLETED' THEN
        INSERT INTO rating_windows (task_id, closes_at)
        VALUES (NEW.id, NEW.completed_at + interval '7 days')
        ON CONFLICT (task_id) DO NOTHING;
        event := 'completed';
    ELSIF OLD.state = 'DISPUTED' THEN
        event := 'dispute_lost';
    ELSIF NEW.cancelled_by = NEW.poster_id THEN
        event := 'no_show';
    END IF;
    IF event IS NOT NULL THEN
        INSERT INTO outbox (job, payload)
        VALUES ('trust.evaluate', jsonb_build_object('user_id', NEW.worker_id, 'task_id', NEW.id, 'event', event));
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER tasks_after_close AFTER UPDATE OF state ON tasks
    FOR EACH ROW
    WHEN (OLD.state IS DISTINCT FROM NEW.state AND NEW.worker_id IS NOT NULL
          AND NEW.state IN ('COMPLETED', 'CANCELLED'))
    EXECUTE FUNCTION tasks_after_close();

-- An ID verification or a phone verification that changes (approved, expired, replaced) may
-- move a tier (VERIFIED needs both; a lapse caps at ROOKIE): evaluate it.
CREATE FUNCTION verification_records_enqueue_trust() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO outbox (job, payload)
    VALUES ('trust.evaluate', jsonb_build_object('user_id', NEW.user_id, 'event', 'verification'));
    RETURN NULL;
END $$;
CREATE TRIGGER verification_records_enqueue_trust AFTER UPDATE OF state ON verification_records
    FOR EACH ROW WHEN (NEW.kind = 'ID' AND OLD.state IS DISTINCT FROM NEW.state)
    EXECUTE FUNCTION verification_records_enqueue_trust();

CREATE FUNCTION users_enqueue_trust() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO outbox (job, payload)
    VALUES ('trust.evaluate', jsonb_build_object('user_id', NEW.id, 'event', 'phone'));
    RETURN NULL;
END $$;
CREATE TRIGGER users_enqueue_trust AFTER UPDATE OF phone, phone_verified_at ON users
    FOR EACH ROW WHEN ((OLD.phone, OLD.phone_verified_at) IS DISTINCT FROM (NEW.phone, NEW.phone_verified_at))
    EXECUTE FUNCTION users_enqueue_trust();

-- INV-15: a trust tier changes only with a reason, and its ledger row is written in the same
-- statement. The changer says why with `SET LOCAL hustle.trust_reason` (and who with
-- hustle.actor_id; NULL is the system, trust.evaluate); an UPDATE without a reason is HX104.
-- (A new account's first tier needs none: 'account created'.)
CREATE OR REPLACE FUNCTION users_record_trust_tier() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    reason text := NULLIF(btrim(current_setting('hustle.trust_reason', true)), '');
BEGIN
    IF TG_OP = 'INSERT' OR NEW.trust_tier IS DISTINCT FROM OLD.trust_tier THEN
        IF TG_OP = 'UPDATE' AND reason IS NULL THEN
            PERFORM hx_raise('HX104', format('the trust tier of user %s changes only with a reason '
                                             '(SET LOCAL hustle.trust_reason)', NEW.id));
        END IF;
        INSERT INTO trust_ledger (user_id, old_tier, new_tier, reason, actor_id)
        VALUES (NEW.id,
                CASE WHEN TG_OP = 'UPDATE' THEN OLD.trust_tier END,
                NEW.trust_tier,
                COALESCE(reason, 'account created'),
                NULLIF(current_setting('hustle.actor_id', true), '')::uuid);
    END IF;
    RETURN NULL;
END $$;
COMMENT ON FUNCTION users_record_trust_tier() IS 'INV-15: every tier change has a reason (HX104 without) and a trust_ledger row, in the same statement.';
