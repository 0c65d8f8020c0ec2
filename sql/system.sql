-- Queries of the system router: facts about the server and its database.

-- name: schema_version
-- The newest migration applied (migration ids are numbered, so the greatest is the newest).
SELECT migration_id FROM _yoyo_migration ORDER BY migration_id DESC LIMIT 1;

-- name: ping
-- The health check's round trip.
SELECT 1;
