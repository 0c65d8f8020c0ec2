-- depends: 0011_cancelled_by
-- A version per task that moves with every change of its row, so that the API may keep a task
-- card's encoded form per process keyed by (id, version): never stale by construction. The feed
-- pages return ids, versions and distances; only cards a process does not hold are read.
--
-- The card of a task in a feed (OPEN and funded) is a function of the task row alone: its
-- escrow is FUNDED for as long as that holds (funded_at is set by the escrow's FUNDED
-- transition, and task_escrow_agree allows OPEN only with PENDING or FUNDED), so the task's own
-- version is the card's.

ALTER TABLE tasks ADD COLUMN version bigint NOT NULL DEFAULT 1
    CONSTRAINT tasks_version_positive CHECK (version >= 1);

-- Every change of the row moves the version by one; the version itself is not settable (a
-- write to it alone changes nothing). Named to fire after tasks_transition_guard (triggers of
-- one event fire in name order), so that it sees the row as the guard left it.
CREATE FUNCTION tasks_version_bump() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.version := OLD.version;
    IF ROW(NEW.*) IS DISTINCT FROM ROW(OLD.*) THEN
        NEW.version := OLD.version + 1;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER tasks_version_bump BEFORE UPDATE ON tasks
    FOR EACH ROW EXECUTE FUNCTION tasks_version_bump();

CREATE OR REPLACE VIEW task_cards AS
SELECT t.id, t.poster_id, t.worker_id, t.title, t.description, t.category, t.price_cents, t.currency,
       t.address, t.location_state,
       ST_Y(t.location::geometry) AS latitude, ST_X(t.location::geometry) AS longitude,
       t.urgent, t.deadline, t.required_trade, t.required_trust_tier, t.insurance_required,
       t.background_check_required, t.requires_proof, t.state, e.state AS escrow_state,
       t.created_at, t.funded_at, t.accepted_at, t.proof_submitted_at,
       COALESCE(t.completed_at, t.cancelled_at, t.expired_at) AS closed_at,
       t.version
  FROM tasks t
  JOIN escrows e ON e.task_id = t.id;

-- As in 0010, plus each task's version.
DROP FUNCTION nearby_open_tasks(uuid, geography, float8, float8, timestamptz, uuid, integer);
CREATE FUNCTION nearby_open_tasks(
    worker uuid, point geography, radius float8,
    after_distance float8, after_created timestamptz, after_id uuid, page_limit integer
) RETURNS TABLE (id uuid, version bigint, created_at timestamptz, distance float8)
LANGUAGE sql STABLE PARALLEL SAFE ROWS 50 SET enable_bitmapscan = off AS $$
    SELECT t.id, t.version, t.created_at, t.location <-> point
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
