-- The feeds (DOMAIN.md "Feed"). Each page is chosen from `tasks` by the shared eligibility
-- predicate (is_eligible, inlined by the planner), then shown through task_cards. No task is
-- filtered afterwards: what the query returns is the feed.
--
-- The page is picked in a LATERAL subquery over the caller's profile row, so that the profile's
-- state reaches the index as a parameter: the newest-first feeds walk the partial
-- (location_state, created_at, id) index and stop after one page.

-- name: feed_profile
-- The caller's capability profile as the cache keys it: version, state, and when the profile's
-- verdicts next change by time alone.
SELECT p.version, p.location_state, capability_valid_until(p) AS valid_until
  FROM capability_profiles p WHERE p.user_id = %(user_id)s;

-- name: feed_normal
WITH page AS (
    SELECT t.id, t.created_at
      FROM capability_profiles p CROSS JOIN LATERAL (
           SELECT t.id, t.created_at FROM tasks t
            WHERE t.state = 'OPEN' AND t.funded_at IS NOT NULL AND t.location_state = p.location_state
              AND is_eligible(t, p)
              AND (%(after_created)s::timestamptz IS NULL
                   OR (t.created_at, t.id) < (%(after_created)s, %(after_id)s::uuid))
            ORDER BY t.created_at DESC, t.id DESC
            LIMIT %(limit)s) t
     WHERE p.user_id = %(user_id)s)
SELECT c.*, 0::float8 AS distance
  FROM page JOIN task_cards c ON c.id = page.id
 ORDER BY page.created_at DESC, page.id DESC;

-- name: feed_urgent
WITH page AS (
    SELECT t.id, t.created_at
      FROM capability_profiles p CROSS JOIN LATERAL (
           SELECT t.id, t.created_at FROM tasks t
            WHERE t.state = 'OPEN' AND t.funded_at IS NOT NULL AND t.urgent
              AND t.location_state = p.location_state AND t.created_at > now() - interval '30 minutes'
              AND is_eligible(t, p)
              AND (%(after_created)s::timestamptz IS NULL
                   OR (t.created_at, t.id) < (%(after_created)s, %(after_id)s::uuid))
            ORDER BY t.created_at DESC, t.id DESC
            LIMIT %(limit)s) t
     WHERE p.user_id = %(user_id)s)
SELECT c.*, 0::float8 AS distance
  FROM page JOIN task_cards c ON c.id = page.id
 ORDER BY page.created_at DESC, page.id DESC;

-- name: prefer_index_order
-- For feed_nearby: walk the GIST index nearest-first (KNN) and stop after a page, rather than
-- gather every task within the radius and sort them (the planner's guess for wide radii).
SELECT set_config('enable_bitmapscan', 'off', true);

-- name: feed_nearby
-- Nearest first, then newest. The inner scan orders by distance alone, which the GIST index
-- yields directly (KNN: it stops after %(limit)s rows); ordering it by the tie-breakers too
-- makes the planner gather every task in the radius and sort them (60 ms at 1M tasks instead of
-- 2). Rows at exactly the same distance (the same spot) may come in any order from the index,
-- so server/domain/feed.py asks for more until the page's last distance is not cut in two.
WITH page AS (
    SELECT t.id, t.created_at, t.distance
      FROM capability_profiles p CROSS JOIN LATERAL (
           SELECT t.id, t.created_at, t.location <-> %(point)s::geography AS distance FROM tasks t
            WHERE t.state = 'OPEN' AND t.funded_at IS NOT NULL
              AND ST_DWithin(t.location, %(point)s::geography, %(radius)s, false)
              AND is_eligible(t, p)
              AND (%(after_distance)s::float8 IS NULL
                   OR (t.location <-> %(point)s::geography) > %(after_distance)s
                   OR ((t.location <-> %(point)s::geography) = %(after_distance)s
                       AND (t.created_at, t.id) < (%(after_created)s, %(after_id)s::uuid)))
            ORDER BY t.location <-> %(point)s::geography
            LIMIT %(limit)s) t
     WHERE p.user_id = %(user_id)s)
SELECT c.*, page.distance
  FROM page JOIN task_cards c ON c.id = page.id
 ORDER BY page.distance, page.created_at DESC, page.id DESC;
