-- Capability profiles (migration 0004): derived by the database's recompute_capability().

-- name: recompute_capability
SELECT * FROM recompute_capability(%(user_id)s);
