-- In-app notifications (migration 0007).

-- name: notify
INSERT INTO notifications (user_id, kind, title, body, task_id, data)
VALUES (%(user_id)s, %(kind)s, %(title)s, %(body)s, %(task_id)s, %(data)s)
RETURNING id;
