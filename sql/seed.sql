-- Bulk loading of development and benchmark data (python -m server seed).

-- name: seed_truncate
-- Empty every table the seed fills (run with triggers off: the ledgers refuse it otherwise).
TRUNCATE users, sessions, one_time_codes, trust_ledger, uploads, verification_records,
         verification_documents, capability_profiles, tasks, escrows, proofs, proof_photos,
         disputes, xp_ledger, notifications, idempotency_keys, outbox, job_runs, admin_actions,
         ratings, rating_windows
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
ANALYZE tasks, escrows, proofs, proof_photos, disputes, uploads, ratings, rating_windows;

-- name: seed_analyze_all
ANALYZE;
