-- Queries of the transactional outbox (see migrations/0001_foundation.sql).

-- name: purge_dispatched
-- Forget rows dispatched longer ago than the retention: their jobs have run, and the
-- idempotency of actors is keyed elsewhere. Bounded per run so a backlog never holds a long lock.
DELETE FROM outbox
 WHERE id IN (
       SELECT id FROM outbox
        WHERE dispatched_at < now() - make_interval(days => %(retention_days)s)
        ORDER BY id
        LIMIT %(batch)s)
RETURNING id;
