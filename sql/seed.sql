-- Bulk loading of development and benchmark data (python -m server seed).

-- name: seed_truncate
-- Empty every table the seed fills (run with triggers off: the ledgers refuse it otherwise).
TRUNCATE users, sessions, one_time_codes, trust_ledger, uploads, verification_records,
         verification_documents, capability_profiles, tasks, escrows, proofs, proof_photos,
         disputes, xp_ledger, notifications, idempotency_keys, outbox, job_runs, admin_actions,
         watch_events
         RESTART IDENTITY;

-- name: seed_capabilities
-- Derive every user's capability profile, through the one derivation there is.
SELECT count(recompute_capability(id)) FROM users;

-- name: seed_award_xp
-- Award XP for every released escrow in the order the work was completed; the ledger's trigger
-- computes each award and keeps users.xp_total and level.
INSERT INTO xp_ledger (user_id, task_id, escrow_id)
SELECT t.worker_id, t.id, e.id
  FROM tasks t JOIN escrows e ON e.task_id = t.id
 WHERE e.state = 'RELEASED'
 ORDER BY t.completed_at, t.id;

-- name: seed_analyze_people
-- Fresh statistics after a bulk load, so that the derivations below plan index scans.
ANALYZE users, uploads, verification_records, verification_documents;

-- name: seed_analyze_tasks
ANALYZE tasks, escrows, proofs, proof_photos, disputes, uploads;

-- name: seed_analyze_all
ANALYZE;

-- name: seed_watch_events
-- The watch log as a live system has it (migration 0037): the funding of the newest open
-- tasks, as their triggers would have written it (the bulk load runs with triggers off), then
-- numbered. Resumable cursors from the start of a bench run.
WITH newest AS (
    SELECT t.* FROM tasks t
     WHERE t.state = 'OPEN' AND t.funded_at IS NOT NULL
     ORDER BY t.created_at DESC, t.id DESC
     LIMIT 2000),
logged AS (
    INSERT INTO watch_events (kind, task_id, data)
    SELECT 'TASK_CHANGED', n.id, jsonb_build_object(
               'state', 'OPEN', 'previous_state', 'OPEN', 'funded', true, 'was_funded', false,
               'version', n.version, 'location_state', n.location_state,
               'latitude', ST_Y(n.location::geometry), 'longitude', ST_X(n.location::geometry),
               'urgent', n.urgent, 'created_at', n.created_at)
      FROM newest n ORDER BY n.created_at, n.id
    RETURNING 1)
SELECT count(*) FROM logged;

-- name: seed_watch_sequence
SELECT watch_sequence(1000000);
