-- Capability profiles (migration 0004): derived by the database's recompute_capability().

-- name: recompute_capability
SELECT r.*, capability_valid_until(r) AS valid_until FROM recompute_capability(%(user_id)s) r;
