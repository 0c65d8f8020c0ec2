-- What `make bench` draws from a seeded database: callers, their sessions, and request data.
-- Samples are deterministic where the data allows (ordered by a hash of the id), so that two
-- runs on the same database send the same requests.

-- name: forget_sessions
-- The previous run's bench sessions (their tokens are predictable by design).
DELETE FROM sessions WHERE user_agent = 'hustle-bench';

-- name: bench_nearby_table
-- The NEARBY run's callers and points, for pgbench's DB ceiling (request n is row n).
DROP TABLE IF EXISTS bench_nearby;
CREATE TABLE bench_nearby (n integer PRIMARY KEY, user_id uuid NOT NULL, point text NOT NULL,
                           radius float8 NOT NULL);

-- name: readers
-- Workers with a capability profile in a state with open, funded tasks: their feeds have rows.
SELECT p.user_id, p.location_state
  FROM capability_profiles p
 WHERE p.location_state IS NOT NULL
   AND EXISTS (SELECT 1 FROM tasks t
                WHERE t.state = 'OPEN' AND t.funded_at IS NOT NULL
                  AND t.location_state = p.location_state)
 ORDER BY md5(p.user_id::text)
 LIMIT %(limit)s;

-- name: posters
SELECT id AS user_id FROM users WHERE NOT is_admin ORDER BY md5(id::text) LIMIT %(limit)s;

-- name: open_points
-- Where the open, funded tasks are, by state (NEARBY requests are made around them).
SELECT location_state, ST_Y(location::geometry) AS latitude, ST_X(location::geometry) AS longitude
  FROM tasks
 WHERE state = 'OPEN' AND funded_at IS NOT NULL;

-- name: open_task_ids
SELECT id FROM tasks
 WHERE state = 'OPEN' AND funded_at IS NOT NULL
 ORDER BY md5(id::text)
 LIMIT %(limit)s;

-- name: task_templates
-- Existing tasks whose contents new CreateTask requests copy (a fresh deadline is set).
SELECT title, description, category, price_cents, currency, address, location_state,
       ST_Y(location::geometry) AS latitude, ST_X(location::geometry) AS longitude, urgent,
       required_trade, required_trust_tier, insurance_required, background_check_required
  FROM tasks
 ORDER BY md5(id::text)
 LIMIT %(limit)s;

-- name: accept_candidates
-- Open, funded, live tasks, each with one worker the eligibility predicate admits, picked from a
-- random point of the profiles' key order (one index probe per task, not a scan per task).
SELECT (c.task).id AS task_id, w.user_id AS worker_id
  FROM (SELECT t AS task, gen_random_uuid() AS start
          FROM tasks t
         WHERE t.state = 'OPEN' AND t.funded_at IS NOT NULL
           AND t.deadline > now() + interval '1 hour'
         ORDER BY random()
         LIMIT %(limit)s) c
 CROSS JOIN LATERAL (
        SELECT p.user_id
          FROM capability_profiles p
         WHERE p.user_id > c.start AND is_eligible(c.task, p)
         ORDER BY p.user_id
         LIMIT 1) w;

-- name: sign_in_emails
SELECT email FROM users
 WHERE NOT is_admin AND email LIKE 'seed%%@hustle.test'
 ORDER BY md5(id::text)
 LIMIT %(limit)s;
