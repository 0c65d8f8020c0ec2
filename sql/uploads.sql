-- Uploads (migration 0003).

-- name: create_upload
INSERT INTO uploads (id, owner_id, purpose, content_type, declared_size, object_key)
VALUES (%(id)s, %(owner_id)s, %(purpose)s, %(content_type)s, %(declared_size)s, %(object_key)s)
RETURNING *;

-- name: get_upload
SELECT * FROM uploads WHERE id = %(id)s;

-- name: lock_upload
SELECT * FROM uploads WHERE id = %(id)s FOR UPDATE;

-- name: mark_uploaded
UPDATE uploads SET state = 'UPLOADED' WHERE id = %(id)s RETURNING *;

-- name: reject_upload
UPDATE uploads SET state = 'REJECTED', rejection_reason = %(reason)s WHERE id = %(id)s RETURNING *;

-- name: ready_upload
UPDATE uploads SET state = 'READY', size_bytes = %(size_bytes)s, sha256 = %(sha256)s, width = %(width)s,
                   height = %(height)s, thumbnail_key = %(thumbnail_key)s
 WHERE id = %(id)s
RETURNING *;

-- name: set_avatar
UPDATE users SET avatar_upload_id = %(upload_id)s WHERE id = %(user_id)s;
