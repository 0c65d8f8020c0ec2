DROP TABLE IF EXISTS idempotency_keys;
DROP FUNCTION IF EXISTS idempotency_keys_guard();
DROP TABLE IF EXISTS notifications;
DROP FUNCTION IF EXISTS notifications_guard();
