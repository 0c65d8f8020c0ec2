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
-- --- notifications (migration 0033) ---------------------------------------------------------
UNION ALL
SELECT 'notification read before it was written', count(*)
  FROM notifications WHERE read_at < created_at
UNION ALL
SELECT 'in-app notifications turned off', count(*)
  FROM notification_preferences WHERE channel = 'IN_APP' AND NOT enabled
UNION ALL
SELECT 'urgent SMS on without a verified phone or a saved point', count(*)
  FROM notification_preferences p
  JOIN users u ON u.id = p.user_id
  LEFT JOIN notification_settings s ON s.user_id = p.user_id
 WHERE p.kind = 'URGENT_TASK_NEARBY' AND p.channel = 'SMS' AND p.enabled
   AND (u.phone_verified_at IS NULL OR s.urgent_location IS NULL)
UNION ALL
SELECT 'time zone that is not an IANA name', count(*)
  FROM users WHERE time_zone IS NOT NULL AND NOT is_time_zone(time_zone)
UNION ALL
-- (the platform's caps: a user's own cap may have been lowered since)
SELECT 'urgent SMS over the platform''s caps (5 an hour, 20 a day)', count(*)
  FROM (SELECT x.user_id, x.created_at,
               count(*) OVER (PARTITION BY x.user_id ORDER BY x.created_at
                              RANGE BETWEEN interval '1 hour' PRECEDING AND CURRENT ROW) AS in_hour,
               count(*) OVER (PARTITION BY x.user_id ORDER BY x.created_at
                              RANGE BETWEEN interval '24 hours' PRECEDING AND CURRENT ROW) AS in_day
          FROM urgent_sms_sends x
         WHERE x.outcome = 'SENT') w
 WHERE w.in_hour > 5 OR w.in_day > 20
-- Task messaging (migration 0034): INV-11, INV-12.
UNION ALL
SELECT 'message between others than the task''s poster and worker (INV-11)', count(*)
  FROM messages m JOIN tasks t ON t.id = m.task_id
 WHERE t.worker_id IS NULL OR m.sender_id = m.recipient_id
    OR m.sender_id NOT IN (t.poster_id, t.worker_id) OR m.recipient_id NOT IN (t.poster_id, t.worker_id)
UNION ALL
SELECT 'message in a thread that was not open (INV-11)', count(*)
  FROM messages m JOIN tasks t ON t.id = m.task_id
 WHERE t.accepted_at IS NULL OR m.created_at > COALESCE(t.completed_at, t.cancelled_at, t.expired_at, 'infinity')
UNION ALL
SELECT 'message text empty, too long or with contact details (INV-12)', count(*)
  FROM messages m
 WHERE (m.body IS NULL AND cardinality(m.photo_ids) = 0) OR char_length(m.body) > 500
    OR char_length(m.caption) > 200 OR message_has_contact(m.body) OR message_has_contact(m.caption)
UNION ALL
SELECT 'message photo not a READY message photo of the sender for its task (INV-12)', count(*)
  FROM messages m
 WHERE cardinality(m.photo_ids) > 3
    OR EXISTS (SELECT 1 FROM unnest(m.photo_ids) p LEFT JOIN uploads u ON u.id = p
                WHERE u.id IS NULL OR u.state <> 'READY' OR u.owner_id <> m.sender_id
                   OR u.purpose <> 'MESSAGE_PHOTO' OR u.object_key <> 'messages/' || m.task_id || '/' || p)
-- Ratings and trust tiers (migration 0035): INV-13, INV-14, INV-15.
UNION ALL
SELECT 'rating of a task that is not completed (INV-13)', count(*)
  FROM ratings r JOIN tasks t ON t.id = r.task_id
 WHERE t.state <> 'COMPLETED'
UNION ALL
SELECT 'rating not between the task''s two parties (INV-13)', count(*)
  FROM ratings r JOIN tasks t ON t.id = r.task_id
 WHERE NOT ((r.rater_id, r.ratee_id, r.ratee_role) = (t.poster_id, t.worker_id, 'WORKER')
            OR (r.rater_id, r.ratee_id, r.ratee_role) = (t.worker_id, t.poster_id, 'POSTER'))
UNION ALL
SELECT 'rating outside its window, or automatic inside it (INV-13)', count(*)
  FROM ratings r JOIN tasks t ON t.id = r.task_id
 WHERE r.is_auto = (r.created_at < t.completed_at + interval '7 days')
UNION ALL
SELECT 'more than one rating per task and rater (INV-13)', count(*)
  FROM (SELECT 1 FROM ratings GROUP BY task_id, rater_id HAVING count(*) > 1) d
UNION ALL
SELECT 'ratings revealed alone, apart, or not when both exist (INV-14)', count(*)
  FROM (SELECT task_id FROM ratings GROUP BY task_id
         HAVING (count(revealed_at) > 0 AND count(revealed_at) < 2)
             OR (count(*) = 2 AND count(revealed_at) < 2)
             OR count(DISTINCT revealed_at) > 1) x
UNION ALL
SELECT 'rating stars, comment or tags out of bounds (INV-14)', count(*)
  FROM ratings
 WHERE stars NOT BETWEEN 1 AND 5 OR char_length(comment) NOT BETWEEN 1 AND 500
    OR NOT rating_tags_valid(ratee_role, tags) OR (stars > 3 AND rating_tags_negative(ratee_role, tags))
    OR (is_auto AND (stars <> 5 OR comment IS NOT NULL OR cardinality(tags) > 0))
UNION ALL
SELECT 'trust tier is not the ledger''s latest (INV-15)', count(*)
  FROM users u
  LEFT JOIN LATERAL (SELECT l.new_tier FROM trust_ledger l WHERE l.user_id = u.id
                      ORDER BY l.created_at DESC, l.id DESC LIMIT 1) l ON true
 WHERE l.new_tier IS DISTINCT FROM u.trust_tier
UNION ALL
SELECT 'trust ledger change without a reason, or out of sequence (INV-15)', count(*)
  FROM (SELECT l.old_tier, l.reason,
               lag(l.new_tier) OVER (PARTITION BY l.user_id ORDER BY l.created_at, l.id) AS previous
          FROM trust_ledger l) x
 WHERE x.previous IS DISTINCT FROM x.old_tier OR btrim(x.reason) = ''
    OR (x.old_tier IS NOT NULL AND x.reason IN ('unspecified', 'account created'))
-- Admin actions and account standing (INV-16, INV-17: migrations 0032, 0036).
UNION ALL
SELECT 'suspended or banned worker holds an ACCEPTED or PROOF_SUBMITTED task (INV-17)', count(*)
  FROM tasks t JOIN users u ON u.id = t.worker_id
 WHERE t.state IN ('ACCEPTED', 'PROOF_SUBMITTED') AND u.account_status <> 'ACTIVE'
UNION ALL
SELECT 'suspended or banned poster has an OPEN task (INV-17)', count(*)
  FROM tasks t JOIN users u ON u.id = t.poster_id
 WHERE t.state = 'OPEN' AND u.account_status <> 'ACTIVE'
UNION ALL
SELECT 'suspended or banned account has a live session (INV-17)', count(*)
  FROM sessions s JOIN users u ON u.id = s.user_id
 WHERE s.revoked_at IS NULL AND s.expires_at > now() AND u.account_status <> 'ACTIVE'
UNION ALL
SELECT 'suspended or banned account without its stamp and admin log row (INV-16)', count(*)
  FROM users u
 WHERE u.account_status <> 'ACTIVE'
   AND (u.account_status_at IS NULL
        OR NOT EXISTS (SELECT 1 FROM admin_actions a
                        WHERE a.target_kind = 'user' AND a.target_id = u.id::text
                          AND a.action = CASE u.account_status WHEN 'BANNED' THEN 'user.ban'
                                                               ELSE 'user.suspend' END))
UNION ALL
SELECT 'admin log row about a user that does not exist (INV-16)', count(*)
  FROM admin_actions a LEFT JOIN users u ON u.id::text = a.target_id
 WHERE a.target_kind = 'user' AND u.id IS NULL
UNION ALL
SELECT 'admins, but none of them active', count(*)
  FROM (SELECT 1 WHERE EXISTS (SELECT 1 FROM users WHERE is_admin)
                   AND NOT EXISTS (SELECT 1 FROM users WHERE is_admin AND account_status = 'ACTIVE')) x
-- Watch streams (migration 0037): the cursors clients resume from.
UNION ALL
SELECT 'watch cursors not a gap-free run above the purge horizon', count(*)
  FROM (SELECT seq, lag(seq) OVER (ORDER BY seq) AS before
          FROM watch_events
         WHERE seq > COALESCE((SELECT purged_through FROM watch_horizon), 0)) s
 WHERE s.seq - COALESCE(s.before, COALESCE((SELECT purged_through FROM watch_horizon), 0)) <> 1;
