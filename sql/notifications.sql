-- In-app notifications (migration 0007).

-- name: notify
INSERT INTO notifications (user_id, kind, title, body, task_id, data)
VALUES (%(user_id)s, %(kind)s, %(title)s, %(body)s, %(task_id)s, %(data)s)
RETURNING id;

-- name: list_notifications
-- A user's notifications, newest first, after the keyset (created_at, id) of the last page.
SELECT id, kind, title, body, task_id, created_at, read_at
  FROM notifications
 WHERE user_id = %(user_id)s
   AND (NOT %(unread_only)s OR read_at IS NULL)
   AND (%(after_created)s::timestamptz IS NULL OR (created_at, id) < (%(after_created)s, %(after_id)s::uuid))
 ORDER BY created_at DESC, id DESC
 LIMIT %(limit)s;

-- name: unread_count
SELECT count(*) FROM notifications WHERE user_id = %(user_id)s AND read_at IS NULL;

-- name: mark_read
-- Only the user's own, and only those still unread (read_at is set once: notifications_guard).
UPDATE notifications SET read_at = now()
 WHERE user_id = %(user_id)s AND id = ANY(%(ids)s::uuid[]) AND read_at IS NULL;

-- name: notification_owned
SELECT id FROM notifications WHERE id = %(id)s AND user_id = %(user_id)s;

-- name: mark_all_read
-- Every unread notification of the user up to and including %(up_to_id)s in the list's order
-- (all of them when NULL).
UPDATE notifications n SET read_at = now()
 WHERE n.user_id = %(user_id)s AND n.read_at IS NULL
   AND (%(up_to_id)s::uuid IS NULL
        OR (n.created_at, n.id) <= (SELECT m.created_at, m.id FROM notifications m
                                     WHERE m.id = %(up_to_id)s::uuid AND m.user_id = %(user_id)s));

-- name: notification_preferences
-- Every kind (in the order given) on every channel, with the user's choice or the default.
SELECT k.kind, c.channel, notification_wanted(%(user_id)s::uuid, k.kind, c.channel) AS enabled
  FROM unnest(%(kinds)s::text[]) WITH ORDINALITY AS k (kind, kind_order)
 CROSS JOIN unnest(ARRAY['IN_APP', 'EMAIL', 'SMS']) WITH ORDINALITY AS c (channel, channel_order)
 ORDER BY k.kind_order, c.channel_order;

-- name: notification_settings
-- Quiet hours and urgent SMS, defaults filled in (the table's defaults: migration 0033).
SELECT COALESCE(u.time_zone, state_time_zone(u.location_state)) AS time_zone,
       COALESCE(s.quiet_hours_enabled, true) AS quiet_hours_enabled,
       COALESCE(s.quiet_start_minute, 1320)::integer AS quiet_start_minute,
       COALESCE(s.quiet_end_minute, 480)::integer AS quiet_end_minute,
       ST_Y(s.urgent_location::geometry) AS urgent_latitude,
       ST_X(s.urgent_location::geometry) AS urgent_longitude,
       COALESCE(s.urgent_radius_m, 5000) AS urgent_radius_m,
       COALESCE(s.urgent_daily_cap, 3)::integer AS urgent_daily_cap,
       notification_wanted(u.id, 'URGENT_TASK_NEARBY', 'SMS') AS urgent_enabled,
       u.phone_verified_at IS NOT NULL AS phone_verified
  FROM users u LEFT JOIN notification_settings s ON s.user_id = u.id
 WHERE u.id = %(user_id)s;

-- name: set_preferences
-- Set (kind, channel) choices given as three parallel arrays.
INSERT INTO notification_preferences (user_id, kind, channel, enabled)
SELECT %(user_id)s, x.kind, x.channel, x.enabled
  FROM unnest(%(kinds)s::text[], %(channels)s::text[], %(enabled)s::boolean[]) AS x (kind, channel, enabled)
ON CONFLICT (user_id, kind, channel) DO UPDATE SET enabled = EXCLUDED.enabled;

-- name: set_time_zone
-- NULL: back to the home state's zone.
UPDATE users SET time_zone = %(time_zone)s WHERE id = %(user_id)s;

-- name: set_quiet_hours
INSERT INTO notification_settings (user_id, quiet_hours_enabled, quiet_start_minute, quiet_end_minute)
VALUES (%(user_id)s, %(enabled)s, %(start_minute)s, %(end_minute)s)
ON CONFLICT (user_id) DO UPDATE
   SET quiet_hours_enabled = EXCLUDED.quiet_hours_enabled,
       quiet_start_minute = EXCLUDED.quiet_start_minute,
       quiet_end_minute = EXCLUDED.quiet_end_minute;

-- name: set_urgent_sms
-- A NULL latitude/longitude clears the saved point.
INSERT INTO notification_settings (user_id, urgent_location, urgent_radius_m, urgent_daily_cap)
VALUES (%(user_id)s,
        ST_SetSRID(ST_MakePoint(%(longitude)s::float8, %(latitude)s::float8), 4326)::geography,
        %(radius_m)s, %(daily_cap)s)
ON CONFLICT (user_id) DO UPDATE
   SET urgent_location = EXCLUDED.urgent_location,
       urgent_radius_m = EXCLUDED.urgent_radius_m,
       urgent_daily_cap = EXCLUDED.urgent_daily_cap;

-- name: outbox_enqueue_for_user
-- An email or SMS caused by a notification: nothing when the user turned that kind off on that
-- channel; otherwise due at once, or when the user's quiet hours end. Decided here, at enqueue
-- time (the actor sends what is due; a later change of preferences does not recall it).
INSERT INTO outbox (job, payload, available_at)
SELECT %(job)s, %(payload)s, COALESCE(quiet_hours_end(%(user_id)s::uuid, now()), now())
 WHERE notification_wanted(%(user_id)s::uuid, %(kind)s, %(channel)s)
RETURNING id;

-- name: urgent_fanout
-- Decide the urgent SMS of a task (migration 0033): the recipients written now, once each.
SELECT f.recipient_id AS user_id, f.recipient_phone AS phone, f.decided AS outcome,
       f.meters AS distance_m
  FROM urgent_fanout(%(task_id)s::uuid) f;

-- name: urgent_task
SELECT id, title, price_cents, currency FROM tasks WHERE id = %(task_id)s;

-- name: purge_notifications
-- Notifications older than the retention, a batch at a time.
DELETE FROM notifications
 WHERE id IN (SELECT id FROM notifications
               WHERE created_at < now() - make_interval(days => %(days)s)
               LIMIT %(batch)s);

-- name: purge_urgent_sms_sends
DELETE FROM urgent_sms_sends
 WHERE (task_id, user_id) IN (SELECT task_id, user_id FROM urgent_sms_sends
                               WHERE created_at < now() - make_interval(days => %(days)s)
                               LIMIT %(batch)s);
