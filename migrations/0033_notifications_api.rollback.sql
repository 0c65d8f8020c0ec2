-- depends: 0032_part2_foundation
DROP TRIGGER IF EXISTS tasks_enqueue_urgent_fanout ON tasks;
DROP FUNCTION IF EXISTS tasks_enqueue_urgent_fanout();
DROP FUNCTION IF EXISTS urgent_fanout(uuid);
DROP TABLE IF EXISTS urgent_sms_sends;
DROP FUNCTION IF EXISTS urgent_sms_sends_caps();
DROP FUNCTION IF EXISTS quiet_hours_end(uuid, timestamptz);
DROP FUNCTION IF EXISTS quiet_window_end(timestamptz, text, integer, integer);
DROP TABLE IF EXISTS notification_preferences;
DROP FUNCTION IF EXISTS notification_preferences_guard();
DROP TABLE IF EXISTS notification_settings;
DROP FUNCTION IF EXISTS notification_settings_guard();
DROP FUNCTION IF EXISTS notification_wanted(uuid, text, text);
DROP FUNCTION IF EXISTS state_time_zone(text);
ALTER TABLE users DROP COLUMN IF EXISTS time_zone;
DROP FUNCTION IF EXISTS is_time_zone(text);
DELETE FROM outbox WHERE job = 'sms.urgent_fanout';
