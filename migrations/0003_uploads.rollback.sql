DROP TRIGGER IF EXISTS users_avatar_guard ON users;
DROP FUNCTION IF EXISTS users_avatar_guard();
ALTER TABLE users DROP CONSTRAINT IF EXISTS users_avatar_upload_fkey;
DROP FUNCTION IF EXISTS require_ready_upload(uuid, uuid, text);
DROP TABLE IF EXISTS uploads;
DROP FUNCTION IF EXISTS uploads_guard();
DROP FUNCTION IF EXISTS upload_transition_allowed(text, text);
