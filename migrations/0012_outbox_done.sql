-- depends: 0011_cancelled_by
-- An outbox row is done when its actor's effect has committed, not when its message reached
-- Redis. jobs/once.py stamps done_at in the transaction of the effect itself; a row dispatched
-- but not done whose message Redis no longer holds (its data was lost: a flush, a restart
-- without persistence) is sent again by the relay's sweep (jobs/relay.py). A row whose message
-- failed every retry is marked dead_at (it waits in the dead-letter queue, not for the sweep).

ALTER TABLE outbox ADD COLUMN done_at timestamptz;
ALTER TABLE outbox ADD COLUMN dead_at timestamptz;
ALTER TABLE outbox ADD CONSTRAINT outbox_done_after_created CHECK (done_at IS NULL OR done_at >= created_at);
ALTER TABLE outbox ADD CONSTRAINT outbox_dead_was_dispatched CHECK (dead_at IS NULL OR dispatched_at IS NOT NULL);

-- What was done before this migration is done.
UPDATE outbox o SET done_at = greatest(j.completed_at, o.created_at) FROM job_runs j WHERE j.outbox_id = o.id;

CREATE INDEX outbox_unfinished_idx ON outbox (id)
    WHERE dispatched_at IS NOT NULL AND done_at IS NULL AND dead_at IS NULL;
COMMENT ON INDEX outbox_unfinished_idx IS 'The redelivery sweep''s access path: rows sent but not yet done (normally only those in flight). Partial, so it stays as small as that.';

-- Purged by when they finished (done or dead), not by when they were sent.
DROP INDEX outbox_dispatched_at_idx;
CREATE INDEX outbox_finished_at_idx ON outbox ((coalesce(done_at, dead_at)))
    WHERE done_at IS NOT NULL OR dead_at IS NOT NULL;
COMMENT ON INDEX outbox_finished_at_idx IS 'The purge''s access path: finished rows (done or dead) by age.';
