-- Identity: users, sessions, one-time codes (migration 0002).

-- name: session_by_token
-- The auth interceptor's lookup: a live session and its user.
SELECT s.id AS session_id, s.user_id, s.expires_at, u.is_admin,
       s.last_seen_at IS NULL OR s.last_seen_at < now() - interval '5 minutes' AS stale,
       u.account_status = 'ACTIVE' AS active
  FROM sessions s JOIN users u ON u.id = s.user_id
 WHERE s.token_hash = %(token_hash)s AND s.revoked_at IS NULL AND s.expires_at > now();

-- name: session_seen
UPDATE sessions SET last_seen_at = now() WHERE id = %(session_id)s AND revoked_at IS NULL;

-- name: create_session
INSERT INTO sessions (user_id, token_hash, expires_at, user_agent, ip)
VALUES (%(user_id)s, %(token_hash)s, now() + make_interval(days => %(ttl_days)s), %(user_agent)s, %(ip)s)
RETURNING id, expires_at;

-- name: rotate_session
UPDATE sessions SET token_hash = %(token_hash)s, expires_at = now() + make_interval(days => %(ttl_days)s)
 WHERE id = %(session_id)s AND user_id = %(user_id)s AND revoked_at IS NULL
RETURNING id, expires_at;

-- name: revoke_session
UPDATE sessions SET revoked_at = now()
 WHERE id = %(session_id)s AND user_id = %(user_id)s AND revoked_at IS NULL
RETURNING token_hash;

-- name: session_of
-- A session of the user's, revoked or not (NULL: not theirs, or no such session).
SELECT id FROM sessions WHERE id = %(session_id)s AND user_id = %(user_id)s;

-- name: revoke_all_sessions
UPDATE sessions SET revoked_at = now()
 WHERE user_id = %(user_id)s AND revoked_at IS NULL
RETURNING token_hash;

-- name: list_sessions
-- A user's live sessions, newest first, after the keyset (created_at, id) of the last page.
SELECT id, created_at, expires_at, last_seen_at, user_agent
  FROM sessions
 WHERE user_id = %(user_id)s AND revoked_at IS NULL AND expires_at > now()
   AND (%(after_created)s::timestamptz IS NULL OR (created_at, id) < (%(after_created)s, %(after_id)s::uuid))
 ORDER BY created_at DESC, id DESC
 LIMIT %(limit)s;

-- name: create_user
INSERT INTO users (email, password_hash, full_name, default_mode)
VALUES (%(email)s, %(password_hash)s, %(full_name)s, %(default_mode)s)
RETURNING id, email, email_verified_at, phone, phone_verified_at, full_name, default_mode, trust_tier,
          xp_total, level, location_state, is_admin, created_at, avatar_upload_id;

-- name: user_credentials
SELECT id, password_hash, full_name FROM users WHERE email = %(email)s;

-- name: set_password
UPDATE users SET password_hash = %(password_hash)s WHERE id = %(user_id)s;

-- name: create_code
INSERT INTO one_time_codes (user_id, purpose, code_hash, target, expires_at)
VALUES (%(user_id)s, %(purpose)s, %(code_hash)s, %(target)s, now() + %(lifetime)s)
RETURNING id, expires_at;

-- name: retire_codes
-- Older live codes of the same purpose stop working when a new one is sent.
UPDATE one_time_codes SET expires_at = greatest(created_at + interval '1 microsecond', now())
 WHERE user_id = %(user_id)s AND purpose = %(purpose)s AND used_at IS NULL AND expires_at > now();

-- name: code_by_hash
-- A link token's code row (links are looked up by their hash), locked for the check.
SELECT id, user_id, target, code_hash, expires_at > now() AS live, attempts, used_at
  FROM one_time_codes
 WHERE code_hash = %(code_hash)s AND purpose = %(purpose)s
   FOR UPDATE;

-- name: latest_code
-- A user's newest code of a purpose (OTPs are checked against it), locked for the check.
SELECT id, user_id, target, code_hash, expires_at > now() AS live, attempts, used_at
  FROM one_time_codes
 WHERE user_id = %(user_id)s AND purpose = %(purpose)s
 ORDER BY created_at DESC
 LIMIT 1
   FOR UPDATE;

-- name: count_attempt
UPDATE one_time_codes SET attempts = attempts + 1 WHERE id = %(id)s RETURNING attempts;

-- name: use_code
UPDATE one_time_codes SET used_at = now() WHERE id = %(id)s;

-- name: mark_email_verified
UPDATE users SET email_verified_at = now() WHERE id = %(user_id)s AND email = %(email)s RETURNING id;

-- name: set_verified_phone
UPDATE users SET phone = %(phone)s, phone_verified_at = now() WHERE id = %(user_id)s;
