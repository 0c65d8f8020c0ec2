-- Verification records (migration 0004).

-- name: expire_due_verifications
-- Approved credentials past their expiry → EXPIRED (each change queues the user's recompute).
WITH due AS (
    SELECT id FROM verification_records
     WHERE state = 'APPROVED' AND expires_at <= now()
     ORDER BY expires_at
     LIMIT %(batch)s
       FOR UPDATE SKIP LOCKED
), expired AS (
    UPDATE verification_records v SET state = 'EXPIRED'
      FROM due WHERE v.id = due.id
    RETURNING v.id, v.user_id, v.kind, v.trade, v.state, v.expires_at, v.reviewed_by
)
SELECT e.id, e.user_id, e.kind, e.trade, e.state, e.expires_at, e.reviewed_by, u.email, u.full_name
  FROM expired e JOIN users u ON u.id = e.user_id;

-- name: insert_verification
INSERT INTO verification_records (user_id, kind, trade, expires_at)
VALUES (%(user_id)s, %(kind)s, %(trade)s, %(expires_at)s)
RETURNING id;

-- name: insert_verification_document
INSERT INTO verification_documents (verification_id, position, upload_id)
VALUES (%(verification_id)s, %(position)s, %(upload_id)s);

-- name: verification_card
SELECT v.*, ARRAY(SELECT d.upload_id FROM verification_documents d WHERE d.verification_id = v.id
                  ORDER BY d.position) AS documents
  FROM verification_records v WHERE v.id = %(id)s;

-- name: my_verifications
-- A user's verifications, newest first, after a keyset position; `limit` NULL: all of them.
SELECT v.*, ARRAY(SELECT d.upload_id FROM verification_documents d WHERE d.verification_id = v.id
                  ORDER BY d.position) AS documents
  FROM verification_records v
 WHERE v.user_id = %(user_id)s
   AND (%(after_submitted)s::timestamptz IS NULL OR (v.submitted_at, v.id) < (%(after_submitted)s, %(after_id)s::uuid))
 ORDER BY v.submitted_at DESC, v.id DESC
 LIMIT %(limit)s;

-- name: pending_verifications
-- The review queue, oldest first, after a keyset position; `kinds` NULL: every kind.
SELECT v.*, ARRAY(SELECT d.upload_id FROM verification_documents d WHERE d.verification_id = v.id
                  ORDER BY d.position) AS documents
  FROM verification_records v
 WHERE v.state = 'PENDING'
   AND (%(kinds)s::text[] IS NULL OR v.kind = ANY(%(kinds)s::text[]))
   AND (%(after_submitted)s::timestamptz IS NULL OR (v.submitted_at, v.id) > (%(after_submitted)s, %(after_id)s::uuid))
 ORDER BY v.submitted_at, v.id
 LIMIT %(limit)s;

-- name: lock_verification
SELECT v.id, v.user_id, v.kind, v.trade, v.state, v.expires_at, v.reviewed_by, u.email, u.full_name
  FROM verification_records v JOIN users u ON u.id = v.user_id
 WHERE v.id = %(id)s FOR UPDATE OF v;

-- name: review_verification
UPDATE verification_records SET state = %(state)s, reviewed_by = %(admin_id)s, rejection_reason = %(reason)s
 WHERE id = %(id)s;
