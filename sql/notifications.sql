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
