-- Profiles (migration 0002).

-- name: get_user
SELECT id, email, email_verified_at, phone, phone_verified_at, full_name, default_mode, trust_tier,
       xp_total, level, location_state, is_admin, created_at, avatar_upload_id
  FROM users WHERE id = %(user_id)s;

-- name: update_profile
-- Only the fields given (non-NULL) change.
UPDATE users
   SET full_name = COALESCE(%(full_name)s, full_name),
       default_mode = COALESCE(%(default_mode)s, default_mode),
       location_state = COALESCE(%(location_state)s, location_state)
 WHERE id = %(user_id)s
RETURNING id, email, email_verified_at, phone, phone_verified_at, full_name, default_mode, trust_tier,
          xp_total, level, location_state, is_admin, created_at, avatar_upload_id;
