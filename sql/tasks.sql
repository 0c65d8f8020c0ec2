-- Tasks (migration 0005).

-- name: expire_due_tasks
-- Open tasks past their deadline → EXPIRED (the trigger checks the deadline and stamps the time).
UPDATE tasks SET state = 'EXPIRED'
 WHERE id IN (SELECT id FROM tasks
               WHERE state = 'OPEN' AND deadline <= now()
               ORDER BY deadline
               LIMIT %(batch)s
                 FOR UPDATE SKIP LOCKED)
RETURNING id, poster_id, title;

-- name: refund_funded_escrows
UPDATE escrows SET state = 'REFUNDED'
 WHERE task_id = ANY(%(task_ids)s) AND state = 'FUNDED'
RETURNING task_id, amount_cents, currency;
