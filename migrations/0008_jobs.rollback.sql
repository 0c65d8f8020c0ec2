DROP TABLE IF EXISTS job_runs;
DROP TRIGGER IF EXISTS outbox_notify ON outbox;
DROP FUNCTION IF EXISTS outbox_notify();
DROP INDEX IF EXISTS outbox_pending_idx;
CREATE INDEX outbox_undispatched_idx ON outbox (id) WHERE dispatched_at IS NULL;
COMMENT ON INDEX outbox_undispatched_idx IS 'The relay''s access path: the undispatched rows in order. Partial, so it stays as small as the backlog however long the table grows.';
ALTER TABLE outbox DROP CONSTRAINT IF EXISTS outbox_dispatched_or_failed;
ALTER TABLE outbox DROP CONSTRAINT IF EXISTS outbox_failed_has_error;
ALTER TABLE outbox DROP COLUMN IF EXISTS failed_at;
