-- The invariants of DOMAIN.md checked over whole tables: each query counts the rows that break
-- one rule. The triggers prevent these row by row; the audit proves it for data that arrived
-- another way (a bulk seed, a restore) and is cheap enough to run on a schedule.

-- name: audit
SELECT 'task and escrow disagree' AS rule, count(*) AS violations
  FROM tasks t LEFT JOIN escrows e ON e.task_id = t.id
 WHERE e.id IS NULL OR NOT task_escrow_agree(t.state, e.state)
UNION ALL
SELECT 'escrow amount is not the task price (INV-4)', count(*)
  FROM tasks t JOIN escrows e ON e.task_id = t.id
 WHERE (e.amount_cents, e.currency) IS DISTINCT FROM (t.price_cents, t.currency)
UNION ALL
SELECT 'released escrow of an unfinished task (INV-2)', count(*)
  FROM escrows e JOIN tasks t ON t.id = e.task_id
 WHERE e.state = 'RELEASED' AND t.state <> 'COMPLETED'
UNION ALL
SELECT 'completed without an accepted proof (INV-3)', count(*)
  FROM tasks t
 WHERE t.state = 'COMPLETED' AND t.requires_proof
   AND NOT EXISTS (SELECT 1 FROM proofs p WHERE p.task_id = t.id AND p.state = 'ACCEPTED')
UNION ALL
SELECT 'XP without a released escrow (INV-1)', count(*)
  FROM xp_ledger x JOIN escrows e ON e.id = x.escrow_id
 WHERE e.state <> 'RELEASED'
UNION ALL
SELECT 'users.xp_total is not the ledger''s sum', count(*)
  FROM users u
  LEFT JOIN (SELECT user_id, sum(amount) AS total FROM xp_ledger GROUP BY user_id) x ON x.user_id = u.id
 WHERE u.xp_total <> COALESCE(x.total, 0) OR u.level <> level_for_xp(u.xp_total)
UNION ALL
SELECT 'worker is the poster (INV-8)', count(*)
  FROM tasks WHERE worker_id = poster_id
UNION ALL
SELECT 'proof without 1 to 5 photos (INV-9)', count(*)
  FROM proofs p
 WHERE (SELECT count(*) FROM proof_photos f WHERE f.proof_id = p.id) NOT BETWEEN 1 AND 5
UNION ALL
SELECT 'proof photo not a READY upload of the worker', count(*)
  FROM proof_photos f JOIN proofs p ON p.id = f.proof_id JOIN uploads u ON u.id = f.upload_id
 WHERE u.state <> 'READY' OR u.owner_id <> p.worker_id OR u.purpose <> 'PROOF_PHOTO'
UNION ALL
SELECT 'open task funded_at disagrees with its escrow', count(*)
  FROM tasks t JOIN escrows e ON e.task_id = t.id
 WHERE t.state = 'OPEN' AND (t.funded_at IS NOT NULL) <> (e.state = 'FUNDED')
UNION ALL
SELECT 'task in progress whose worker is not the proof''s', count(*)
  FROM proofs p JOIN tasks t ON t.id = p.task_id
 WHERE p.worker_id IS DISTINCT FROM t.worker_id
UNION ALL
SELECT 'capability profile missing or stale', count(*)
  FROM users u LEFT JOIN capability_profiles c ON c.user_id = u.id
 WHERE c.user_id IS NULL OR c.trust_tier <> u.trust_tier OR c.location_state IS DISTINCT FROM u.location_state
-- Watch streams (migration 0037): the cursors clients resume from.
UNION ALL
SELECT 'watch cursors not a gap-free run above the purge horizon', count(*)
  FROM (SELECT seq, lag(seq) OVER (ORDER BY seq) AS before
          FROM watch_events
         WHERE seq > COALESCE((SELECT purged_through FROM watch_horizon), 0)) s
 WHERE s.seq - COALESCE(s.before, COALESCE((SELECT purged_through FROM watch_horizon), 0)) <> 1;
