-- Disputes (migration 0005).

-- name: insert_dispute
INSERT INTO disputes (task_id, opened_by, reason) VALUES (%(task_id)s, %(opened_by)s, %(reason)s)
RETURNING *;

-- name: lock_dispute
SELECT * FROM disputes WHERE id = %(dispute_id)s FOR UPDATE;

-- name: open_dispute_of
-- A task's open dispute, if it has one.
SELECT * FROM disputes WHERE task_id = %(task_id)s AND state = 'OPEN';

-- name: resolve_dispute
UPDATE disputes SET state = 'RESOLVED', resolution = %(resolution)s, split_release_cents = %(split)s,
                    resolved_by = %(admin_id)s, resolution_note = %(note)s, resolved_at = now()
 WHERE id = %(dispute_id)s
RETURNING *;

-- name: list_open_disputes
SELECT * FROM disputes
 WHERE state = 'OPEN'
   AND (%(after_created)s::timestamptz IS NULL OR (created_at, id) > (%(after_created)s, %(after_id)s::uuid))
 ORDER BY created_at, id
 LIMIT %(limit)s;

-- name: dispute_by_id
SELECT * FROM disputes WHERE id = %(dispute_id)s;
