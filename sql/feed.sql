-- The feeds (DOMAIN.md "Feed"). Each page is chosen from `tasks` by the shared eligibility
-- predicate (is_eligible, inlined by the planner). No task is filtered afterwards: what the
-- query returns is the feed.
--
-- A page query returns each task's id, version (migration 0030), keyset position and distance,
-- not its card: the API keeps encoded cards per process by (id, version) and reads only the
-- ones it lacks (feed_cards). The page is picked in a LATERAL subquery over the caller's profile
-- row, so that the profile's state reaches the index as a parameter: the newest-first feeds walk
-- the partial (location_state, created_at, id) index and stop after one page.

-- name: feed_profile
-- The caller's capability profile as the cache keys it: version, state, and when the profile's
-- verdicts next change by time alone.
SELECT p.version, p.location_state, capability_valid_until(p) AS valid_until
  FROM capability_profiles p WHERE p.user_id = %(user_id)s;

-- name: feed_normal
SELECT t.id, t.version, t.created_at, 0::float8 AS distance
  FROM capability_profiles p CROSS JOIN LATERAL (
       SELECT t.id, t.version, t.created_at FROM tasks t
        WHERE t.state = 'OPEN' AND t.funded_at IS NOT NULL AND t.location_state = p.location_state
          AND is_eligible(t, p)
          AND (%(after_created)s::timestamptz IS NULL
               OR (t.created_at, t.id) < (%(after_created)s, %(after_id)s::uuid))
        ORDER BY t.created_at DESC, t.id DESC
        LIMIT %(limit)s) t
 WHERE p.user_id = %(user_id)s
 ORDER BY t.created_at DESC, t.id DESC;

-- name: feed_urgent
SELECT t.id, t.version, t.created_at, 0::float8 AS distance
  FROM capability_profiles p CROSS JOIN LATERAL (
       SELECT t.id, t.version, t.created_at FROM tasks t
        WHERE t.state = 'OPEN' AND t.funded_at IS NOT NULL AND t.urgent
          AND t.location_state = p.location_state AND t.created_at > now() - interval '30 minutes'
          AND is_eligible(t, p)
          AND (%(after_created)s::timestamptz IS NULL
               OR (t.created_at, t.id) < (%(after_created)s, %(after_id)s::uuid))
        ORDER BY t.created_at DESC, t.id DESC
        LIMIT %(limit)s) t
 WHERE p.user_id = %(user_id)s
 ORDER BY t.created_at DESC, t.id DESC;

-- name: feed_nearby
-- Nearest first, then newest; the scan is nearby_open_tasks (migrations 0010, 0030), which walks
-- the GIST index nearest-first and stops after %(limit)s rows.
SELECT page.id, page.version, page.created_at, page.distance
  FROM nearby_open_tasks(%(user_id)s::uuid, %(point)s::geography, %(radius)s::float8,
                         %(after_distance)s::float8, %(after_created)s::timestamptz,
                         %(after_id)s::uuid, %(limit)s::integer) page
 ORDER BY page.distance, page.created_at DESC, page.id DESC;

-- name: feed_cards
-- The cards of tasks a page named (the caller compares each version with the page's). In a
-- feed every task is one the caller may take.
SELECT c.*, true AS eligible FROM task_cards c WHERE c.id = ANY(%(ids)s::uuid[]);
