-- Task messaging (migration 0034). The insert trigger checks who writes, when, with which
-- photos and how often; these statements only say what to do.

-- name: thread_task
-- The task a thread belongs to: its parties, its state, whether it was ever disputed.
SELECT id, poster_id, worker_id, state, disputed_at IS NOT NULL AS ever_disputed
  FROM tasks WHERE id = %(task_id)s;

-- name: send_message
-- The message, and the recipient's NEW_MESSAGE notification, in one statement.
WITH sent AS (
    INSERT INTO messages (task_id, sender_id, body, photo_ids, caption)
    VALUES (%(task_id)s, %(sender_id)s, %(body)s, %(photo_ids)s::uuid[], %(caption)s)
    RETURNING *
), told AS (
    INSERT INTO notifications (user_id, kind, title, body, task_id, data)
    SELECT s.recipient_id, 'NEW_MESSAGE', left('New message about “' || t.title || '”', 200),
           %(preview)s, s.task_id, jsonb_build_object('message_id', s.id, 'sender_id', s.sender_id)
      FROM sent s JOIN tasks t ON t.id = s.task_id
)
SELECT id, task_id, sender_id, recipient_id, body, photo_ids, caption, created_at, read_at,
       hidden_at, hidden_by, hidden_reason
  FROM sent;

-- name: message_retry_after
-- Seconds until the sender may write again in this thread (after HX501): when the message
-- that fills each full window leaves it.
SELECT GREATEST(
    (SELECT extract(epoch FROM created_at + interval '1 hour' - now()) FROM messages
      WHERE sender_id = %(sender_id)s AND task_id = %(task_id)s AND created_at > now() - interval '1 hour'
      ORDER BY created_at DESC OFFSET 9 LIMIT 1),
    (SELECT extract(epoch FROM created_at + interval '1 day' - now()) FROM messages
      WHERE sender_id = %(sender_id)s AND created_at > now() - interval '1 day'
      ORDER BY created_at DESC OFFSET 99 LIMIT 1),
    (SELECT extract(epoch FROM min(created_at) + interval '1 day' - now()) FROM messages
      WHERE sender_id = %(sender_id)s AND created_at > now() - interval '1 day'
        AND cardinality(photo_ids) > 0 AND %(photos)s > 0),
    1)::float8;

-- name: list_thread
-- A thread, newest first, after the keyset (created_at, id) of the last page. The sender sees
-- when a message was read only if its recipient keeps read receipts on; hidden messages are
-- left out unless asked for (admins).
SELECT m.id, m.task_id, m.sender_id, m.recipient_id, m.body, m.photo_ids, m.caption, m.created_at,
       CASE WHEN m.sender_id = %(viewer_id)s::uuid AND NOT COALESCE(s.read_receipts, true) THEN NULL
            ELSE m.read_at END AS read_at,
       m.hidden_at, m.hidden_by, m.hidden_reason
  FROM messages m LEFT JOIN message_settings s ON s.user_id = m.recipient_id
 WHERE m.task_id = %(task_id)s
   AND (%(include_hidden)s OR m.hidden_at IS NULL)
   AND (%(after_created)s::timestamptz IS NULL OR (m.created_at, m.id) < (%(after_created)s, %(after_id)s::uuid))
 ORDER BY m.created_at DESC, m.id DESC
 LIMIT %(limit)s;

-- name: message_photos
-- What links to a page's photos are made from.
SELECT id, object_key, thumbnail_key, width, height FROM uploads WHERE id = ANY(%(ids)s::uuid[]);

-- name: message_in_thread
SELECT true FROM messages WHERE id = %(message_id)s AND task_id = %(task_id)s;

-- name: mark_thread_read
-- The recipient's unread messages of a thread up to one of them (all of them without one), and
-- their NEW_MESSAGE notifications with them; how many messages were marked.
WITH marked AS (
    UPDATE messages SET read_at = greatest(now(), created_at)
     WHERE task_id = %(task_id)s AND recipient_id = %(user_id)s AND read_at IS NULL
       AND (%(up_to)s::uuid IS NULL
            OR (created_at, id) <= (SELECT u.created_at, u.id FROM messages u WHERE u.id = %(up_to)s::uuid))
    RETURNING id
), told AS (
    UPDATE notifications SET read_at = greatest(now(), created_at)
     WHERE user_id = %(user_id)s AND kind = 'NEW_MESSAGE' AND task_id = %(task_id)s AND read_at IS NULL
       AND data->>'message_id' IN (SELECT id::text FROM marked)
)
SELECT count(*)::int FROM marked;

-- name: unread_counts
-- A user's unread messages per thread (the 100 with the newest unread first) and in total.
SELECT task_id, count(*)::int AS unread, (sum(count(*)) OVER ())::int AS total
  FROM messages
 WHERE recipient_id = %(user_id)s AND read_at IS NULL AND hidden_at IS NULL
 GROUP BY task_id
 ORDER BY max(created_at) DESC, task_id
 LIMIT 100;

-- name: message_settings_of
SELECT COALESCE((SELECT read_receipts FROM message_settings WHERE user_id = %(user_id)s), true);

-- name: set_read_receipts
INSERT INTO message_settings (user_id, read_receipts) VALUES (%(user_id)s, %(enabled)s)
ON CONFLICT (user_id) DO UPDATE SET read_receipts = EXCLUDED.read_receipts, updated_at = now()
RETURNING read_receipts;

-- name: lock_message
SELECT id, task_id, sender_id, recipient_id, body, photo_ids, caption, created_at, read_at,
       hidden_at, hidden_by, hidden_reason
  FROM messages WHERE id = %(message_id)s FOR UPDATE;

-- name: hide_message
UPDATE messages SET hidden_at = now(), hidden_by = %(admin_id)s, hidden_reason = %(reason)s
 WHERE id = %(message_id)s
RETURNING id, task_id, sender_id, recipient_id, body, photo_ids, caption, created_at, read_at,
          hidden_at, hidden_by, hidden_reason;

-- name: message_admin_log
-- An admin's read or hide, in the admin log (INV-16), in the transaction that does it.
INSERT INTO admin_actions (actor_id, action, target_kind, target_id, reason, details)
VALUES (%(actor_id)s, %(action)s, %(target_kind)s, %(target_id)s, %(reason)s, %(details)s);

-- name: purge_messages
-- Up to `batch` messages of tasks that ended 90 days ago and were never disputed (the delete
-- trigger checks each row again), with their photos' uploads (each sent once); the S3 keys of
-- those photos and thumbnails, for deleting the objects once this commits.
WITH gone AS (
    DELETE FROM messages WHERE id IN (
        SELECT m.id FROM tasks t JOIN messages m ON m.task_id = t.id
         WHERE t.state IN ('COMPLETED', 'CANCELLED', 'EXPIRED') AND t.disputed_at IS NULL
           AND COALESCE(t.completed_at, t.cancelled_at, t.expired_at) <= now() - interval '90 days'
         LIMIT %(batch)s)
    RETURNING photo_ids
), photos AS (
    DELETE FROM uploads
     WHERE purpose = 'MESSAGE_PHOTO' AND id IN (SELECT unnest(photo_ids) FROM gone)
    RETURNING object_key, thumbnail_key
)
SELECT (SELECT count(*) FROM gone)::int AS messages,
       ARRAY(SELECT k FROM photos, LATERAL (VALUES (object_key), (thumbnail_key)) AS v (k)
              WHERE k IS NOT NULL ORDER BY k) AS object_keys;
