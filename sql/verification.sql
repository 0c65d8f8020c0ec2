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
    RETURNING v.id, v.user_id, v.kind, v.trade, v.expires_at
)
SELECT e.id, e.user_id, e.kind, e.trade, e.expires_at, u.email, u.full_name
  FROM expired e JOIN users u ON u.id = e.user_id;
