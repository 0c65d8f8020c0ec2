-- Bulk loading of development and benchmark data (python -m server seed).

-- name: seed_truncate
-- Empty every table the seed fills (run with triggers off: the ledgers refuse it otherwise).
TRUNCATE users, sessions, one_time_codes, trust_ledger, uploads, verification_records,
         verification_documents, capability_profiles, tasks, escrows, proofs, proof_photos,
         disputes, xp_ledger, notifications, idempotency_keys, outbox, job_runs, admin_actions,
         notification_settings, notification_preferences, urgent_sms_sends,
         messages, message_settings, ratings, rating_windows, watch_events
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
ANALYZE tasks, escrows, proofs, proof_photos, disputes, uploads, messages, ratings, rating_windows;

-- name: seed_analyze_all
ANALYZE;

-- name: seed_notifications
-- In-app notifications of the 30 days before %(now)s (older ones would have been purged), one
-- per transition of each task to the party it concerns; ids derived from the task and kind, so
-- the same seed gives the same rows. Most of those older than a day were read.
INSERT INTO notifications (id, user_id, kind, title, task_id, created_at, read_at)
SELECT md5(t.id::text || n.kind)::uuid, n.user_id, n.kind, n.title, t.id, n.at,
       CASE WHEN n.at < %(now)s - interval '1 day'
                 AND get_byte(decode(md5(t.id::text || n.kind), 'hex'), 0) < 200
            THEN n.at + interval '3 hours' END
  FROM tasks t
 CROSS JOIN LATERAL (VALUES
       ('ESCROW_FUNDED', t.poster_id, t.funded_at, 'Your task is funded and in the feed'),
       ('TASK_ACCEPTED', t.poster_id, t.accepted_at, 'Your task was accepted'),
       ('PROOF_SUBMITTED', t.poster_id, t.proof_submitted_at, 'Proof was submitted for your task'),
       ('DISPUTE_OPENED', t.worker_id, t.disputed_at, 'Your proof is disputed'),
       ('PROOF_ACCEPTED', t.worker_id, t.completed_at, 'Your proof was accepted'),
       ('TASK_CANCELLED', t.worker_id, t.cancelled_at, 'A task you took was cancelled'),
       ('TASK_EXPIRED', t.poster_id, t.expired_at, 'Your task expired')
 ) AS n (kind, user_id, at, title)
 WHERE n.user_id IS NOT NULL AND n.at IS NOT NULL
   AND n.at > %(now)s - interval '30 days' AND n.at <= %(now)s;

-- name: seed_notification_settings
-- A quarter of the users changed a default: quiet hours (some off, some moved); those of them
-- with a verified phone and a posted task, one in eight, saved their latest task's point for
-- urgent SMS.
INSERT INTO notification_settings (user_id, quiet_hours_enabled, quiet_start_minute, quiet_end_minute,
                                   urgent_location, urgent_radius_m, urgent_daily_cap)
SELECT u.id, u.h %% 5 <> 0, CASE WHEN u.h %% 3 = 0 THEN 1380 ELSE 1320 END,
       CASE WHEN u.h %% 2 = 0 THEN 420 ELSE 480 END,
       CASE WHEN u.phone_verified_at IS NOT NULL AND u.h %% 8 = 0 THEN
            (SELECT t.location FROM tasks t WHERE t.poster_id = u.id
              ORDER BY t.created_at DESC, t.id DESC LIMIT 1) END,
       CASE WHEN u.h %% 16 = 0 THEN 10000 ELSE 5000 END, 1 + u.h %% 5
  FROM (SELECT id, phone_verified_at, abs(hashtext(id::text)) AS h FROM users) u
 WHERE u.h %% 4 = 0;

-- name: seed_notification_preferences
-- Urgent SMS on for those who saved a point; some users turned two kinds of email off.
INSERT INTO notification_preferences (user_id, kind, channel, enabled)
SELECT s.user_id, 'URGENT_TASK_NEARBY', 'SMS', true
  FROM notification_settings s WHERE s.urgent_location IS NOT NULL
UNION ALL
SELECT u.id, k.kind, 'EMAIL', false
  FROM users u CROSS JOIN (VALUES ('DISPUTE_RESOLVED'), ('VERIFICATION_APPROVED')) AS k (kind)
 WHERE abs(hashtext(u.id::text)) %% 7 = 0;
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
