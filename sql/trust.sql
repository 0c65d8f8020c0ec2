-- Trust tiers (migrations 0002 and 0035): what trust.evaluate counts, and the change itself.

-- name: lock_user_tier
-- The user's row, locked for the evaluation: two evaluations of one user take turns.
SELECT trust_tier FROM users WHERE id = %(user_id)s FOR UPDATE;

-- name: trust_counts
-- Everything the tier rules read about one user, as a worker, in one statement.
SELECT u.trust_tier AS tier,
       now() - u.created_at AS account_age,
       u.phone_verified_at IS NOT NULL AS phone_verified,
       EXISTS (SELECT 1 FROM verification_records v
                WHERE v.user_id = u.id AND v.kind = 'ID' AND v.state = 'APPROVED'
                  AND (v.expires_at IS NULL OR v.expires_at > now())) AS id_verified,
       w.completed, w.on_time, w.disputed, w.disputes_lost, w.no_shows,
       r.rated, r.average_stars,
       now() - GREATEST(w.last_penalty_at,
                        (SELECT max(l.created_at) FROM trust_ledger l
                          WHERE l.user_id = u.id AND l.new_tier < l.old_tier)) AS since_demotion
  FROM users u
 CROSS JOIN LATERAL (
       SELECT (count(*) FILTER (WHERE t.state = 'COMPLETED'))::int AS completed,
              (count(*) FILTER (WHERE t.state = 'COMPLETED'
                                  AND COALESCE(t.proof_submitted_at, t.completed_at) <= t.deadline))::int AS on_time,
              (count(*) FILTER (WHERE t.disputed_at IS NOT NULL))::int AS disputed,
              (count(*) FILTER (WHERE t.state = 'CANCELLED' AND t.disputed_at IS NOT NULL))::int AS disputes_lost,
              (count(*) FILTER (WHERE t.state = 'CANCELLED' AND t.disputed_at IS NULL
                                  AND t.cancelled_by = t.poster_id))::int AS no_shows,
              max(t.cancelled_at) FILTER (WHERE t.state = 'CANCELLED'
                                            AND (t.disputed_at IS NOT NULL OR t.cancelled_by = t.poster_id))
                  AS last_penalty_at
         FROM tasks t WHERE t.worker_id = u.id) w
 CROSS JOIN LATERAL (
       SELECT (count(*) FILTER (WHERE NOT x.is_auto))::int AS rated,
              round(avg(x.stars) FILTER (WHERE NOT x.is_auto), 2) AS average_stars
         FROM ratings x
        WHERE x.ratee_id = u.id AND x.ratee_role = 'WORKER' AND x.revealed_at IS NOT NULL) r
 WHERE u.id = %(user_id)s;

-- name: set_trust_reason
-- INV-15: why the tier changes (and no actor: the system), for the users trigger's ledger row;
-- transaction-local.
SELECT set_config('hustle.trust_reason', %(reason)s, true), set_config('hustle.actor_id', '', true);

-- name: set_trust_tier
UPDATE users SET trust_tier = %(tier)s WHERE id = %(user_id)s;

-- name: trust_profile
-- The capability profile after a tier change (the one derivation), for the feed cache.
SELECT r.version, r.location_state, capability_valid_until(r) AS valid_until
  FROM recompute_capability(%(user_id)s) r;

-- name: trust_sweep_candidates
-- Users whose tier the daily sweep should look at, after `after` (keyset on id): above ROOKIE
-- without a valid ID or phone (the cap), or with the completions the next tier needs.
SELECT u.id
  FROM users u
 WHERE u.id > %(after)s::uuid
   AND ((u.trust_tier > 1
         AND (u.phone_verified_at IS NULL
              OR NOT EXISTS (SELECT 1 FROM verification_records v
                              WHERE v.user_id = u.id AND v.kind = 'ID' AND v.state = 'APPROVED'
                                AND (v.expires_at IS NULL OR v.expires_at > now()))))
        OR (u.trust_tier < 4
            AND (SELECT count(*) FROM tasks t WHERE t.worker_id = u.id AND t.state = 'COMPLETED')
                >= (ARRAY[5, 20, 100])[u.trust_tier]))
 ORDER BY u.id
 LIMIT %(batch)s;
