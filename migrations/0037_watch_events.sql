-- depends: 0036_admin
-- Watch streams (issue 16): a durable log of the changes clients follow, written by triggers in
-- the transaction of the change itself (the outbox pattern), so that a client that reconnects
-- replays from PostgreSQL exactly what it missed.
--
-- Ordering. `id` (bigserial) is insert order, which is not commit order: a transaction may take
-- id 105 and commit after another took 106 and committed, so a reader that went "after 106"
-- would skip 105 for ever. Clients therefore never see `id`. Their cursor is `seq`, assigned
-- after commit by watch_sequence(): one sequencer at a time (an advisory lock held to its
-- commit) numbers the committed, unnumbered rows in id order, continuing the run without gaps.
-- Because sequencers commit one after another and each starts from what the previous committed,
-- `seq` becomes visible in its own order: a reader of `seq > cursor` can never later find a
-- smaller seq appear. (Chosen over a snapshot-xmin horizon: xmin is cluster-wide, so one long
-- transaction in any database would hold back every stream.)

CREATE TABLE watch_events (
    id         bigserial PRIMARY KEY,
    -- the public cursor: NULL until the sequencer numbers the committed row (once)
    seq        bigint,
    kind       text        NOT NULL CONSTRAINT watch_events_kind_format CHECK (kind ~ '^[A-Z][A-Z_]{2,39}$'),
    -- whose stream it belongs to: a task's (WatchTask, WatchFeed) or a user's (WatchNotifications)
    task_id    uuid,
    user_id    uuid,
    -- small: what a stream needs to filter and to say what happened (never a whole row)
    data       jsonb       NOT NULL DEFAULT '{}'::jsonb
               CONSTRAINT watch_events_data_small CHECK (jsonb_typeof(data) = 'object' AND pg_column_size(data) <= 16384),
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT watch_events_has_subject CHECK (task_id IS NOT NULL OR user_id IS NOT NULL),
    CONSTRAINT watch_events_seq_positive CHECK (seq IS NULL OR seq >= 1)
);
CREATE UNIQUE INDEX watch_events_seq_idx ON watch_events (seq);
COMMENT ON INDEX watch_events_seq_idx IS 'The hubs read every stream''s events after their cursor, in cursor order; one cursor per event.';
CREATE INDEX watch_events_unsequenced_idx ON watch_events (id) WHERE seq IS NULL;
COMMENT ON INDEX watch_events_unsequenced_idx IS 'watch_sequence(): the committed events still waiting for a cursor, in insert order.';
CREATE INDEX watch_events_task_idx ON watch_events (task_id, seq) WHERE task_id IS NOT NULL;
COMMENT ON INDEX watch_events_task_idx IS 'WatchTask resuming: one task''s events after a cursor.';
CREATE INDEX watch_events_user_idx ON watch_events (user_id, seq) WHERE user_id IS NOT NULL;
COMMENT ON INDEX watch_events_user_idx IS 'WatchNotifications resuming: one user''s events after a cursor.';
CREATE INDEX watch_events_created_idx ON watch_events (created_at);
COMMENT ON INDEX watch_events_created_idx IS 'watch.purge: the newest event past the retention.';

-- How far the retention purge went: a cursor below it has lost events (a resync).
CREATE TABLE watch_horizon (
    only_row       boolean PRIMARY KEY DEFAULT true CONSTRAINT watch_horizon_one_row CHECK (only_row),
    purged_through bigint  NOT NULL DEFAULT 0 CONSTRAINT watch_horizon_non_negative CHECK (purged_through >= 0)
);
INSERT INTO watch_horizon DEFAULT VALUES;

-- The watch log is append-only: a row's content never changes, its cursor is assigned once (by
-- the sequencer), a row is never written with a cursor of its own choosing, and rows are deleted
-- only by the retention purge, once at least an hour old (HX102, as the other append-only logs).
CREATE FUNCTION watch_events_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.seq IS NOT NULL THEN
            PERFORM hx_raise('HX102', 'a watch event gets its cursor from the sequencer only');
        END IF;
        RETURN NEW;
    ELSIF TG_OP = 'UPDATE' THEN
        IF OLD.seq IS NOT NULL OR NEW.seq IS NULL
           OR (NEW.id, NEW.kind, NEW.task_id, NEW.user_id, NEW.data, NEW.created_at)
              IS DISTINCT FROM (OLD.id, OLD.kind, OLD.task_id, OLD.user_id, OLD.data, OLD.created_at) THEN
            PERFORM hx_raise('HX102', 'a watch event is immutable; only its cursor is assigned, once');
        END IF;
        RETURN NEW;
    END IF;
    IF OLD.created_at > now() - interval '1 hour' THEN
        PERFORM hx_raise('HX102', 'watch events are kept at least an hour (the retention purge deletes them)');
    END IF;
    RETURN OLD;
END $$;
CREATE TRIGGER watch_events_guard BEFORE INSERT OR UPDATE OR DELETE ON watch_events
    FOR EACH ROW EXECUTE FUNCTION watch_events_guard();

-- Number the committed events that have no cursor yet, in insert order, continuing the run; the
-- highest cursor assigned so far. One sequencer at a time (every server process's hub calls it
-- when woken): the lock is held until this transaction commits, so the next one sees its work.
CREATE FUNCTION watch_sequence(batch integer DEFAULT 10000) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    base bigint;
    numbered bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('hustle.watch_sequence'));
    base := GREATEST(COALESCE((SELECT max(seq) FROM watch_events), 0),
                     COALESCE((SELECT purged_through FROM watch_horizon), 0));
    WITH todo AS (
        SELECT id, row_number() OVER (ORDER BY id) AS n
          FROM (SELECT id FROM watch_events WHERE seq IS NULL ORDER BY id LIMIT batch) unsequenced)
    UPDATE watch_events e SET seq = base + todo.n FROM todo WHERE e.id = todo.id;
    GET DIAGNOSTICS numbered = ROW_COUNT;
    RETURN base + numbered;
END $$;

-- The generic emitter, for any table whose inserts or updates are events:
--   EXECUTE FUNCTION watch_emit(kind, task id column, user id column or '', data columns...)
-- writes one event with those columns of the new row, and wakes every hub (payload: the column
-- that names the stream's owner). Task messages attach it when they land:
--   CREATE TRIGGER messages_watch AFTER INSERT ON messages FOR EACH ROW
--       EXECUTE FUNCTION watch_emit('MESSAGE_SENT', 'task_id', '', 'id', 'sender_id', 'created_at');
CREATE FUNCTION watch_emit() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    source jsonb := to_jsonb(NEW);
    payload jsonb := '{}'::jsonb;
    i integer;
BEGIN
    FOR i IN 3 .. TG_NARGS - 1 LOOP
        payload := payload || jsonb_build_object(TG_ARGV[i], source -> TG_ARGV[i]);
    END LOOP;
    INSERT INTO watch_events (kind, task_id, user_id, data)
    VALUES (TG_ARGV[0], (source ->> NULLIF(TG_ARGV[1], ''))::uuid,
            (source ->> NULLIF(TG_ARGV[2], ''))::uuid, payload);
    PERFORM pg_notify('hustle_watch', CASE WHEN TG_ARGV[1] <> '' THEN 'task' ELSE 'user' END);
    RETURN NULL;
END $$;

-- A task's state change or funding: what WatchTask shows and what WatchFeed needs to decide, in
-- process and without a read, whether the task may have entered or left a feed (its state,
-- place, urgency); eligibility itself is decided by is_eligible, in SQL, by the hub.
CREATE FUNCTION tasks_watch() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO watch_events (kind, task_id, data)
    VALUES ('TASK_CHANGED', NEW.id, jsonb_build_object(
        'state', NEW.state, 'previous_state', OLD.state,
        'funded', NEW.funded_at IS NOT NULL, 'was_funded', OLD.funded_at IS NOT NULL,
        'version', NEW.version, 'location_state', NEW.location_state,
        'latitude', ST_Y(NEW.location::geometry), 'longitude', ST_X(NEW.location::geometry),
        'urgent', NEW.urgent, 'created_at', NEW.created_at));
    PERFORM pg_notify('hustle_watch', 'task');
    RETURN NULL;
END $$;
CREATE TRIGGER tasks_watch AFTER UPDATE ON tasks FOR EACH ROW
    WHEN (OLD.state IS DISTINCT FROM NEW.state OR OLD.funded_at IS DISTINCT FROM NEW.funded_at)
    EXECUTE FUNCTION tasks_watch();

CREATE TRIGGER proofs_watch_submitted AFTER INSERT ON proofs FOR EACH ROW
    EXECUTE FUNCTION watch_emit('PROOF_SUBMITTED', 'task_id', '', 'id', 'state');
CREATE TRIGGER proofs_watch_reviewed AFTER UPDATE ON proofs FOR EACH ROW
    WHEN (OLD.state IS DISTINCT FROM NEW.state)
    EXECUTE FUNCTION watch_emit('PROOF_REVIEWED', 'task_id', '', 'id', 'state');
CREATE TRIGGER disputes_watch_opened AFTER INSERT ON disputes FOR EACH ROW
    EXECUTE FUNCTION watch_emit('DISPUTE_OPENED', 'task_id', '', 'id', 'state');
CREATE TRIGGER disputes_watch_resolved AFTER UPDATE ON disputes FOR EACH ROW
    WHEN (OLD.state IS DISTINCT FROM NEW.state)
    EXECUTE FUNCTION watch_emit('DISPUTE_RESOLVED', 'task_id', '', 'id', 'state', 'resolution');
CREATE TRIGGER notifications_watch_created AFTER INSERT ON notifications FOR EACH ROW
    EXECUTE FUNCTION watch_emit('NOTIFICATION_CREATED', '', 'user_id', 'id', 'kind', 'title', 'body',
                                'task_id', 'created_at');

-- Notifications marked read: one event per user and statement (MarkAllRead marks many at once),
-- with how many and, for a few, which.
CREATE FUNCTION notifications_watch_read() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO watch_events (kind, user_id, data)
    SELECT 'NOTIFICATIONS_READ', n.user_id,
           jsonb_build_object('count', count(*),
                              'ids', CASE WHEN count(*) <= 100 THEN jsonb_agg(n.id ORDER BY n.id) END)
      FROM new_rows n JOIN old_rows o ON o.id = n.id
     WHERE o.read_at IS NULL AND n.read_at IS NOT NULL
     GROUP BY n.user_id;
    IF FOUND THEN
        PERFORM pg_notify('hustle_watch', 'user');
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER notifications_watch_read AFTER UPDATE ON notifications
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION notifications_watch_read();
