-- Proofs and their photos (migration 0005).

-- name: insert_proof
INSERT INTO proofs (task_id, worker_id, note) VALUES (%(task_id)s, %(worker_id)s, %(note)s)
RETURNING id, created_at;

-- name: insert_proof_photo
INSERT INTO proof_photos (proof_id, position, upload_id) VALUES (%(proof_id)s, %(position)s, %(upload_id)s);

-- name: review_proof
-- The task's proof awaiting review → ACCEPTED or REJECTED.
UPDATE proofs SET state = %(state)s, rejection_reason = %(reason)s
 WHERE task_id = %(task_id)s AND state = 'SUBMITTED'
RETURNING id;

-- name: list_proofs
-- A task's proofs, newest first, after a keyset position (none: from the first); `limit` NULL:
-- all of them.
SELECT p.id, p.note, p.state, p.rejection_reason, p.created_at,
       array_remove(array_agg(f.upload_id ORDER BY f.position), NULL) AS photos
  FROM proofs p LEFT JOIN proof_photos f ON f.proof_id = p.id
 WHERE p.task_id = %(task_id)s
   AND (%(after_created)s::timestamptz IS NULL OR (p.created_at, p.id) < (%(after_created)s, %(after_id)s::uuid))
 GROUP BY p.id
 ORDER BY p.created_at DESC, p.id DESC
 LIMIT %(limit)s;

-- name: latest_proof
-- A task's newest proof (what a retried submit or review is compared with).
SELECT p.id, p.note, p.state, p.rejection_reason, p.created_at,
       array_remove(array_agg(f.upload_id ORDER BY f.position), NULL) AS photos
  FROM proofs p LEFT JOIN proof_photos f ON f.proof_id = p.id
 WHERE p.id = (SELECT id FROM proofs WHERE task_id = %(task_id)s ORDER BY created_at DESC, id DESC LIMIT 1)
 GROUP BY p.id;

-- name: xp_awarded_for
-- The XP a task's completion awarded (NULL: none).
SELECT amount FROM xp_ledger WHERE task_id = %(task_id)s;

-- name: overdue_reviews
-- Tasks whose proof waited for review longer than allowed (proof.review_timeout).
SELECT t.id FROM tasks t
 WHERE t.state = 'PROOF_SUBMITTED' AND t.proof_submitted_at < now() - %(after)s::interval
 ORDER BY t.proof_submitted_at
 LIMIT %(batch)s;

-- name: touch_streak
-- A completed task today extends the worker's streak of consecutive active days.
UPDATE users SET streak_days = CASE WHEN last_active_on = current_date THEN streak_days
                                    WHEN last_active_on = current_date - 1 THEN streak_days + 1
                                    ELSE 1 END,
                 last_active_on = current_date
 WHERE id = %(user_id)s;

-- name: award_xp
-- The ledger's trigger computes the award and keeps users.xp_total and level.
INSERT INTO xp_ledger (user_id, task_id, escrow_id)
SELECT t.worker_id, t.id, e.id FROM tasks t JOIN escrows e ON e.task_id = t.id WHERE t.id = %(task_id)s
RETURNING amount, xp_after, level_before, level_after;
