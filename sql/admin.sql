-- Admin tools and account standing (migrations 0032, 0036).

-- name: admin_lock_admins
-- One transaction-scoped lock around every change of the admin set or of an account's
-- standing (the last-admin trigger takes it too): such changes run one at a time.
SELECT true FROM pg_advisory_xact_lock(hashtext('hustle.admins'));

-- name: admin_actor
-- The acting admin as the database has them now (a cached session may be older), locked so
-- that their rights cannot be revoked under this action.
SELECT is_admin AND account_status = 'ACTIVE' FROM users WHERE id = %(user_id)s FOR SHARE;

-- name: admin_lock_user
-- FOR NO KEY UPDATE, the lock the UPDATE of standing or rights takes anyway: FOR UPDATE would
-- also wait for rows that merely reference the user (a concurrent call's idempotency key holds
-- a key-share lock on its caller) while holding the admin-set lock: a deadlock.
SELECT id, email, full_name, is_admin, account_status, account_status_at
  FROM users WHERE id = %(user_id)s FOR NO KEY UPDATE;

-- name: admin_lock_user_by_email
SELECT id, email, full_name, is_admin, account_status, account_status_at
  FROM users WHERE email = %(email)s FOR NO KEY UPDATE;

-- name: admin_set_admin
UPDATE users SET is_admin = %(is_admin)s WHERE id = %(user_id)s
RETURNING id, email, full_name, is_admin, account_status, account_status_at;

-- name: admin_set_account_status
UPDATE users SET account_status = %(status)s WHERE id = %(user_id)s
RETURNING id, email, full_name, is_admin, account_status, account_status_at;

-- name: admin_log
INSERT INTO admin_actions (actor_id, actor_label, action, target_kind, target_id, reason, details)
VALUES (%(actor_id)s, %(actor_label)s, %(action)s, %(target_kind)s, %(target_id)s, %(reason)s, %(details)s)
RETURNING id::text AS id, actor_id, actor_label, action, target_kind, target_id, reason, details, created_at;

-- name: admin_list_actions
-- The admin log, newest first, after a keyset position.
SELECT id::text AS id, actor_id, actor_label, action, target_kind, target_id, reason, details, created_at
  FROM admin_actions
 WHERE (%(after_created)s::timestamptz IS NULL
        OR (created_at, id) < (%(after_created)s, %(after_id)s::bigint))
 ORDER BY created_at DESC, id DESC
 LIMIT %(limit)s;

-- name: admin_live_session_hashes
-- A user's live sessions' token hashes (their cached entries carry is_admin: dropped when it
-- changes).
SELECT token_hash FROM sessions
 WHERE user_id = %(user_id)s AND revoked_at IS NULL AND expires_at > now();

-- name: admin_revoke_sessions
UPDATE sessions SET revoked_at = now()
 WHERE user_id = %(user_id)s AND revoked_at IS NULL
RETURNING token_hash;

-- name: admin_lock_posted_tasks
-- The user's tasks in `state` as their poster, locked for the standing change's effects.
SELECT id, poster_id, worker_id, state, location_state, requires_proof, title, price_cents, currency,
       cancelled_by
  FROM tasks
 WHERE poster_id = %(user_id)s AND state = %(state)s
 ORDER BY created_at, id
   FOR NO KEY UPDATE;

-- name: admin_lock_taken_tasks
-- The user's tasks in `state` as their worker, locked for the standing change's effects.
SELECT id, poster_id, worker_id, state, location_state, requires_proof, title, price_cents, currency,
       cancelled_by
  FROM tasks
 WHERE worker_id = %(user_id)s AND state = %(state)s
 ORDER BY created_at, id
   FOR NO KEY UPDATE;

-- name: admin_xp_entries
-- A user's XP ledger, newest first, after a keyset position.
SELECT id::text AS id, task_id, amount, xp_before, xp_after, level_before, level_after, created_at
  FROM xp_ledger
 WHERE user_id = %(user_id)s
   AND (%(after_created)s::timestamptz IS NULL
        OR (created_at, id) < (%(after_created)s, %(after_id)s::bigint))
 ORDER BY created_at DESC, id DESC
 LIMIT %(limit)s;

-- name: admin_trust_entries
-- A user's trust ledger, newest first, after a keyset position.
SELECT id::text AS id, old_tier, new_tier, reason, actor_id, created_at
  FROM trust_ledger
 WHERE user_id = %(user_id)s
   AND (%(after_created)s::timestamptz IS NULL
        OR (created_at, id) < (%(after_created)s, %(after_id)s::bigint))
 ORDER BY created_at DESC, id DESC
 LIMIT %(limit)s;

-- name: admin_user_exists
SELECT id FROM users WHERE id = %(user_id)s;
