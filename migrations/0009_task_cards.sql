-- depends: 0008_jobs
-- task_cards: a task as the API shows it (with its escrow's state and its point as lat/lng),
-- one definition for every read of a task.

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

-- The earliest moment a capability profile's verdicts can change by time alone (a credential
-- expiring); feed caches keep a page no longer than this.
CREATE FUNCTION capability_valid_until(p capability_profiles) RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT min(v) FROM (
        SELECT p.insurance_valid_until AS v
        UNION ALL SELECT p.background_check_valid_until
        UNION ALL SELECT (t.value #>> '{}')::timestamptz FROM jsonb_each(p.trades) t
    ) credentials
    WHERE v > now()
$$;
