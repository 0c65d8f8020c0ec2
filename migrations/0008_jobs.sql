-- depends: 0007_notifications
-- The jobs backbone: the relay is woken by NOTIFY when outbox rows commit; rows that can never
-- be dispatched are marked failed; actors record which outbox rows they have done, once.

ALTER TABLE outbox ADD COLUMN failed_at timestamptz;
ALTER TABLE outbox ADD CONSTRAINT outbox_failed_has_error CHECK (failed_at IS NULL OR last_error IS NOT NULL);
ALTER TABLE outbox ADD CONSTRAINT outbox_dispatched_or_failed CHECK (dispatched_at IS NULL OR failed_at IS NULL);

DROP INDEX outbox_undispatched_idx;
CREATE INDEX outbox_pending_idx ON outbox (id) WHERE dispatched_at IS NULL AND failed_at IS NULL;
COMMENT ON INDEX outbox_pending_idx IS 'The relay''s access path: rows still to dispatch, in order. Partial, so it stays as small as the backlog however long the table grows.';

-- One NOTIFY per inserting statement; Postgres delivers it when (and only if) the transaction
-- commits, so the relay wakes for committed rows only.
CREATE FUNCTION outbox_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('outbox', '');
    RETURN NULL;
END $$;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();

-- Which outbox rows an actor has done: a job runs its effect inside the transaction that
-- inserts this row, so a redelivered or retried message finds it and does nothing twice.
CREATE TABLE job_runs (
    outbox_id    bigint      PRIMARY KEY REFERENCES outbox (id) ON DELETE CASCADE,
    actor        text        NOT NULL,
    completed_at timestamptz NOT NULL DEFAULT now()
);
