DROP FUNCTION IF EXISTS nearby_open_tasks(uuid, geography, float8, float8, timestamptz, uuid, integer);
