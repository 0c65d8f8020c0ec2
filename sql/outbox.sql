-- Queries of the transactional outbox (migrations 0001 and 0008).

-- name: outbox_enqueue
-- A job, written in the caller's transaction; the relay sends it once the transaction commits.
INSERT INTO outbox (job, payload, available_at)
VALUES (%(job)s, %(payload)s, now() + %(delay)s)
RETURNING id;

-- name: outbox_claim
-- The next committed, due rows, locked so that concurrent relays take different ones.
SELECT id, job, payload, attempts
  FROM outbox
 WHERE dispatched_at IS NULL AND failed_at IS NULL AND available_at <= now()
 ORDER BY id
 LIMIT %(batch)s
   FOR UPDATE SKIP LOCKED;

-- name: outbox_mark_dispatched
UPDATE outbox SET dispatched_at = now(), attempts = attempts + 1, last_error = NULL
 WHERE id = ANY(%(ids)s);

-- name: outbox_mark_failed
-- A row that can never be dispatched (no such job): kept, with why, for an operator.
UPDATE outbox SET failed_at = now(), attempts = attempts + 1, last_error = %(error)s
 WHERE id = %(id)s;

-- name: outbox_note_error
-- The broker refused a batch (Redis down): count the attempt, keep the rows for the next try.
UPDATE outbox SET attempts = attempts + 1, last_error = %(error)s
 WHERE id = ANY(%(ids)s);

-- name: outbox_backlog
SELECT count(*) AS backlog,
       COALESCE(extract(epoch FROM now() - min(created_at)), 0)::float8 AS oldest_seconds
  FROM outbox
 WHERE dispatched_at IS NULL AND failed_at IS NULL;

-- name: outbox_next_due
-- When the next delayed row becomes due (NULL: none is waiting).
SELECT min(available_at) FROM outbox
 WHERE dispatched_at IS NULL AND failed_at IS NULL AND available_at > now();

-- name: outbox_scrub_secrets
-- Once a job is done, the secrets its payload carried (codes, links) are no longer kept.
UPDATE outbox SET payload = payload - 'secrets' WHERE id = %(id)s AND payload ? 'secrets';

-- name: job_claim
-- Claim an outbox row for an actor's effect; NULL when it was done before. The caller keeps its
-- transaction open while it works, so a concurrent delivery of the same row waits, then skips.
INSERT INTO job_runs (outbox_id, actor) VALUES (%(outbox_id)s, %(actor)s)
ON CONFLICT (outbox_id) DO NOTHING
RETURNING outbox_id;

-- name: purge_dispatched
-- Forget rows dispatched longer ago than the retention (their job_runs go with them). Bounded
-- per run so a backlog never holds a long lock.
DELETE FROM outbox
 WHERE id IN (
       SELECT id FROM outbox
        WHERE dispatched_at < now() - make_interval(days => %(retention_days)s)
        ORDER BY id
        LIMIT %(batch)s)
RETURNING id;
