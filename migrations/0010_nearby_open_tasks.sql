-- depends: 0009_task_cards
-- The NEARBY feed's scan as a function, so that its planner setting travels with it: one
-- statement per page (no transaction to SET LOCAL in), planned the same way every time.

-- Open tasks `worker` may take within `radius` meters of `point`, nearest first, after the
-- keyset position (after_distance, after_created, after_id) when one is given.
-- The scan orders by distance alone, which the GIST index yields directly (KNN: it stops after
-- `page_limit` rows); ordered by the tie-breakers too, or with bitmap scans allowed for wide
-- radii, the planner gathers every task in the radius and sorts them (60 ms instead of 2 at 1M
-- tasks). Rows at exactly the same distance may come in any order: the caller orders them and
-- asks for more when a page would end inside such a run (server/domain/feed.py).
-- ROWS 50: a page, not the default 1000, so that joins on the result stay nested loops.
CREATE FUNCTION nearby_open_tasks(
    worker uuid, point geography, radius float8,
    after_distance float8, after_created timestamptz, after_id uuid, page_limit integer
) RETURNS TABLE (id uuid, created_at timestamptz, distance float8)
LANGUAGE sql STABLE PARALLEL SAFE ROWS 50 SET enable_bitmapscan = off AS $$
    SELECT t.id, t.created_at, t.location <-> point
      FROM capability_profiles p CROSS JOIN LATERAL (
           SELECT t.* FROM tasks t
            WHERE t.state = 'OPEN' AND t.funded_at IS NOT NULL
              AND ST_DWithin(t.location, point, radius, false)
              AND is_eligible(t, p)
              AND (after_distance IS NULL
                   OR (t.location <-> point) > after_distance
                   OR ((t.location <-> point) = after_distance
                       AND (t.created_at, t.id) < (after_created, after_id)))
            ORDER BY t.location <-> point
            LIMIT page_limit) t
     WHERE p.user_id = worker
$$;
