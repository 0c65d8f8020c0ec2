-- Queries of the transactional outbox (migrations 0001, 0008 and 0012).

-- name: outbox_enqueue
-- A job, written in the caller's transaction; the relay sends it once the transaction commits.
INSERT INTO outbox (job, payload, available_at)
VALUES (%(job)s, %(payload)s, now() + %(delay)s)
RETURNING id;

-- name: outbox_claim
-- The next committed, due rows, locked so that concurrent relays take different ones. Due: by
-- now(), or by %(at)s when given (a test's chosen time).
SELECT id, job, payload, attempts
  FROM outbox
 WHERE dispatched_at IS NULL AND failed_at IS NULL
   AND available_at <= COALESCE(%(at)s::timestamptz, now())
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
-- Due rows waiting for the relay (and how long the oldest has been due), and rows sent but not
-- yet done. Rows not due yet (a delay, an email held until quiet hours end) are not a backlog.
SELECT count(*) FILTER (WHERE dispatched_at IS NULL AND available_at <= now()) AS backlog,
       COALESCE(extract(epoch FROM now() - min(available_at)
                                           FILTER (WHERE dispatched_at IS NULL AND available_at <= now())),
                0)::float8 AS oldest_seconds,
       count(*) FILTER (WHERE dispatched_at IS NOT NULL) AS unfinished
  FROM outbox
 WHERE (dispatched_at IS NULL AND failed_at IS NULL)
    OR (dispatched_at IS NOT NULL AND done_at IS NULL AND dead_at IS NULL);

-- name: outbox_next_due
-- When the next delayed row becomes due (NULL: none is waiting).
SELECT min(available_at) FROM outbox
 WHERE dispatched_at IS NULL AND failed_at IS NULL AND available_at > now();

-- name: outbox_mark_done
-- In the transaction of the job's effect: the row is done, and the secrets its payload carried
-- (codes, links) are no longer kept. (A message sent by a relay whose stamp was then lost is done
-- all the same: it counts as dispatched.)
UPDATE outbox
   SET done_at = now(), dead_at = NULL, dispatched_at = COALESCE(dispatched_at, now()),
       payload = payload - 'secrets'
 WHERE id = %(id)s;

-- name: outbox_mark_dead
-- Its message failed every retry and waits in the dead-letter queue: not the sweep's to resend.
UPDATE outbox SET dead_at = now(), last_error = %(error)s
 WHERE id = %(id)s AND done_at IS NULL AND dispatched_at IS NOT NULL;

-- name: outbox_claim_unfinished
-- Rows sent at least %(after)s seconds ago and not done, after the id %(after_id)s (the sweep's
-- keyset), locked so that concurrent sweeps take different ones (the relay then asks Redis
-- whether each one's message is still there).
SELECT id, job, payload, attempts
  FROM outbox
 WHERE dispatched_at IS NOT NULL AND done_at IS NULL AND dead_at IS NULL
   AND dispatched_at < now() - make_interval(secs => %(after)s)
   AND id > %(after_id)s
 ORDER BY id
 LIMIT %(batch)s
   FOR UPDATE SKIP LOCKED;

-- name: outbox_mark_resent
-- Sent again because Redis had lost its message: the sweep waits its delay again from now.
UPDATE outbox SET dispatched_at = now(), attempts = attempts + 1,
       last_error = 'sent again: its message was no longer in Redis'
 WHERE id = ANY(%(ids)s);

-- name: job_claim
-- Claim an outbox row for an actor's effect; NULL when it was done before. The caller keeps its
-- transaction open while it works, so a concurrent delivery of the same row waits, then skips.
INSERT INTO job_runs (outbox_id, actor) VALUES (%(outbox_id)s, %(actor)s)
ON CONFLICT (outbox_id) DO NOTHING
RETURNING outbox_id;

-- name: purge_dispatched
-- Forget rows that finished (done, or dead-lettered) longer ago than the retention (their
-- job_runs go with them); rows sent but never finished stay, for an operator. Bounded per run so
-- a backlog never holds a long lock.
DELETE FROM outbox
 WHERE id IN (
       SELECT id FROM outbox
        WHERE coalesce(done_at, dead_at) < now() - make_interval(days => %(retention_days)s)
          AND (done_at IS NOT NULL OR dead_at IS NOT NULL)
        LIMIT %(batch)s)
RETURNING id;
