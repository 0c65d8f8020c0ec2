DROP FUNCTION IF EXISTS nearby_open_tasks(uuid, geography, float8, float8, timestamptz, uuid, integer);
CREATE FUNCTION nearby_open_tasks(
    worker uuid, point geography, radius float8,
    after_distance float8, after_created timestamptz, after_id uuid, page_limit integer
) RETURNS TABLE (id uuid, created_at timestamptz, distance float8)
LANGUAGE sql STABLE PARALLEL SAFE ROWS 50 SET enable_bitmapscan = off AS $$
    SELECT t.id, t.created_at, t.location <-> point
      FROM capability_profiles p CROSS JOIN LATERAL (
           SELECT t.* FROM tasks t
            WHERE t.state = 'OPEN' AND t.funded_at IS NOT NULL
              AND ST_DWithin(t.location, point, radius, false)
              AND is_eligible(t, p)
              AND (after_distance IS NULL
                   OR (t.location <-> point) > after_distance
                   OR ((t.location <-> point) = after_distance
                       AND (t.created_at, t.id) < (after_created, after_id)))
            ORDER BY t.location <-> point
            LIMIT page_limit) t
     WHERE p.user_id = worker
$$;
DROP VIEW IF EXISTS task_cards;
CREATE VIEW task_cards AS
SELECT t.id, t.poster_id, t.worker_id, t.title, t.description, t.category, t.price_cents, t.currency,
       t.address, t.location_state,
       ST_Y(t.location::geometry) AS latitude, ST_X(t.location::geometry) AS longitude,
       t.urgent, t.deadline, t.required_trade, t.required_trust_tier, t.insurance_required,
       t.background_check_required, t.requires_proof, t.state, e.state AS escrow_state,
       t.created_at, t.funded_at, t.accepted_at, t.proof_submitted_at,
       COALESCE(t.completed_at, t.cancelled_at, t.expired_at) AS closed_at
  FROM tasks t
  JOIN escrows e ON e.task_id = t.id;
DROP TRIGGER IF EXISTS tasks_version_bump ON tasks;
DROP FUNCTION IF EXISTS tasks_version_bump();
ALTER TABLE tasks DROP COLUMN IF EXISTS version;
