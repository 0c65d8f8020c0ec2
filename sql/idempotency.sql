-- Idempotency keys of retried mutations (migration 0007).

-- name: claim_idempotency_key
-- NULL when the key exists: then it is a retry (or, while the first call's transaction is still
-- open, this waits for it and then finds its row).
INSERT INTO idempotency_keys (user_id, method, key, request_hash)
VALUES (%(user_id)s, %(method)s, %(key)s, %(request_hash)s)
ON CONFLICT (user_id, method, key) DO NOTHING
RETURNING true;

-- name: idempotent_response
SELECT request_hash, response FROM idempotency_keys
 WHERE user_id = %(user_id)s AND method = %(method)s AND key = %(key)s AND expires_at > now();

-- name: store_idempotent_response
UPDATE idempotency_keys SET response = %(response)s
 WHERE user_id = %(user_id)s AND method = %(method)s AND key = %(key)s;

-- name: purge_idempotency_keys
DELETE FROM idempotency_keys WHERE expires_at < now();
