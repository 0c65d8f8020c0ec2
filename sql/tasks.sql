-- Tasks and their escrows (migrations 0005, 0009).

-- name: post_task
-- The task, its escrow and its card in one statement (migrations/0031).
SELECT * FROM post_task(%(poster_id)s::uuid, %(title)s, %(description)s, %(category)s,
                        %(price_cents)s::bigint, %(currency)s, %(address)s, %(location_state)s,
                        %(latitude)s::float8, %(longitude)s::float8, %(urgent)s::boolean,
                        %(deadline)s::timestamptz, %(required_trade)s, %(required_trust_tier)s::smallint,
                        %(insurance_required)s::boolean, %(background_check_required)s::boolean);

-- name: task_card
SELECT * FROM task_cards WHERE id = %(task_id)s;

-- name: task_card_for
-- A task with whether `user_id` may accept it (the shared predicate).
SELECT c.*, is_eligible(%(user_id)s::uuid, c.id) AS eligible FROM task_cards c WHERE c.id = %(task_id)s;

-- name: lock_task
SELECT id, poster_id, worker_id, state, location_state, requires_proof, title, price_cents, currency,
       cancelled_by
  FROM tasks WHERE id = %(task_id)s FOR UPDATE;

-- name: update_task
UPDATE tasks
   SET title = COALESCE(%(title)s, title),
       description = COALESCE(%(description)s, description),
       address = COALESCE(%(address)s, address),
       location_state = COALESCE(%(location_state)s, location_state),
       location = COALESCE(ST_SetSRID(ST_MakePoint(%(longitude)s, %(latitude)s), 4326)::geography, location),
       urgent = COALESCE(%(urgent)s, urgent),
       deadline = COALESCE(%(deadline)s, deadline)
 WHERE id = %(task_id)s;

-- name: fund_escrow
UPDATE escrows SET state = 'FUNDED', payment_reference = %(payment_reference)s
 WHERE task_id = %(task_id)s AND state = 'PENDING'
RETURNING amount_cents, currency, released_cents, refunded_cents;

-- name: accept_task
-- The race-free accept, the poster's notification and the card in one statement
-- (migrations/0031): among concurrent accepts the row lock lets one win and the rest re-check
-- `is_eligible` (no longer OPEN) and match nothing (no row).
SELECT * FROM accept_task(%(task_id)s::uuid, %(worker_id)s::uuid, %(note_title)s, %(note_body)s);

-- name: why_not_accepted
SELECT t.state, t.worker_id, t.funded_at IS NOT NULL AS funded, t.poster_id = %(worker_id)s::uuid AS own,
       ineligibility_reason(t, p) AS reason,
       COALESCE(account_active(%(worker_id)s::uuid), false) AS active
  FROM tasks t LEFT JOIN capability_profiles p ON p.user_id = %(worker_id)s
 WHERE t.id = %(task_id)s;

-- name: set_task_state
UPDATE tasks SET state = %(state)s, cancel_reason = COALESCE(%(cancel_reason)s, cancel_reason)
 WHERE id = %(task_id)s;

-- name: cancel_task
UPDATE tasks SET state = 'CANCELLED', cancel_reason = %(cancel_reason)s, cancelled_by = %(cancelled_by)s
 WHERE id = %(task_id)s;

-- name: set_escrow_state
UPDATE escrows SET state = %(state)s WHERE task_id = %(task_id)s
RETURNING amount_cents, currency, released_cents, refunded_cents;

-- name: escrow_of
SELECT state, amount_cents, currency, payment_reference FROM escrows WHERE task_id = %(task_id)s;

-- name: list_posted
-- Newest first, after a keyset position; `states` NULL: every state.
SELECT * FROM task_cards
 WHERE poster_id = %(user_id)s
   AND (%(states)s::text[] IS NULL OR state = ANY(%(states)s::text[]))
   AND (%(after_created)s::timestamptz IS NULL OR (created_at, id) < (%(after_created)s, %(after_id)s::uuid))
 ORDER BY created_at DESC, id DESC
 LIMIT %(limit)s;

-- name: list_accepted
-- Newest first, after a keyset position; `states` NULL: every state.
SELECT * FROM task_cards
 WHERE worker_id = %(user_id)s
   AND (%(states)s::text[] IS NULL OR state = ANY(%(states)s::text[]))
   AND (%(after_created)s::timestamptz IS NULL OR (created_at, id) < (%(after_created)s, %(after_id)s::uuid))
 ORDER BY created_at DESC, id DESC
 LIMIT %(limit)s;

-- name: expire_due_tasks
-- Open tasks past their deadline → EXPIRED (the trigger checks the deadline and stamps the time).
UPDATE tasks SET state = 'EXPIRED'
 WHERE id IN (SELECT id FROM tasks
               WHERE state = 'OPEN' AND deadline <= now()
               ORDER BY deadline
               LIMIT %(batch)s
                 FOR UPDATE SKIP LOCKED)
RETURNING id, poster_id, title, location_state;

-- name: refund_funded_escrows
UPDATE escrows SET state = 'REFUNDED'
 WHERE task_id = ANY(%(task_ids)s) AND state = 'FUNDED'
RETURNING task_id, amount_cents, currency;

-- name: party
-- A user's name and email, for messages about a task.
SELECT id, full_name, email FROM users WHERE id = %(user_id)s;
