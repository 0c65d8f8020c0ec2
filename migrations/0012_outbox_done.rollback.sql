DROP INDEX IF EXISTS outbox_finished_at_idx;
CREATE INDEX IF NOT EXISTS outbox_dispatched_at_idx ON outbox (dispatched_at) WHERE dispatched_at IS NOT NULL;
COMMENT ON INDEX outbox_dispatched_at_idx IS 'The purge''s access path: dispatched rows by age.';
DROP INDEX IF EXISTS outbox_unfinished_idx;
ALTER TABLE outbox DROP CONSTRAINT IF EXISTS outbox_dead_was_dispatched;
ALTER TABLE outbox DROP CONSTRAINT IF EXISTS outbox_done_after_created;
ALTER TABLE outbox DROP COLUMN IF EXISTS dead_at;
ALTER TABLE outbox DROP COLUMN IF EXISTS done_at;
