-- Bulk loading of development and benchmark data (python -m server seed).

-- name: seed_truncate
-- Empty every table the seed fills (run with triggers off: the ledgers refuse it otherwise).
TRUNCATE users, sessions, one_time_codes, trust_ledger, uploads, verification_records,
         verification_documents, capability_profiles, tasks, escrows, proofs, proof_photos,
         disputes, xp_ledger, notifications, idempotency_keys, outbox, job_runs, admin_actions
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

-- name: seed_admin_log
-- The admins' grants in the admin log: the first admin by the command line, the others by
-- the first (migration 0032's admin_actions; DOMAIN.md "Admin actions").
INSERT INTO admin_actions (actor_id, actor_label, action, target_kind, target_id, reason, created_at)
SELECT CASE WHEN a.n = 1 THEN NULL ELSE f.id END, CASE WHEN a.n = 1 THEN 'cli' ELSE 'user' END,
       'admin.grant', 'user', a.id::text,
       CASE WHEN a.n = 1 THEN 'the first admin' ELSE 'seeded: runs support' END,
       a.created_at + interval '1 hour'
  FROM (SELECT id, created_at, row_number() OVER (ORDER BY email) AS n FROM users WHERE is_admin) a
 CROSS JOIN (SELECT id FROM users WHERE is_admin ORDER BY email LIMIT 1) f
 ORDER BY a.n;

-- name: seed_suspend_users
-- A few suspended accounts (their standing through the trigger, a log row each by the first
-- admin), chosen among those whose suspension would have nothing to cancel (no OPEN task as a
-- poster, no ACCEPTED or PROOF_SUBMITTED one as a worker), so that the data is what a suspension leaves.
WITH chosen AS (
    SELECT u.id FROM users u
     WHERE NOT u.is_admin
       AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.worker_id = u.id AND t.state IN ('ACCEPTED', 'PROOF_SUBMITTED'))
       AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.poster_id = u.id AND t.state = 'OPEN')
     ORDER BY u.email
     LIMIT %(count)s
), suspended AS (
    UPDATE users u SET account_status = 'SUSPENDED' FROM chosen c WHERE u.id = c.id RETURNING u.id
)
INSERT INTO admin_actions (actor_id, action, target_kind, target_id, reason, details, created_at)
SELECT (SELECT id FROM users WHERE is_admin ORDER BY email LIMIT 1), 'user.suspend', 'user',
       s.id::text, 'seeded: repeated no-shows', '{"seeded": true}'::jsonb,
       %(now)s::timestamptz - interval '3 days'
  FROM suspended s;

