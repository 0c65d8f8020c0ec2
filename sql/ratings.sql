-- Ratings (migration 0035): the database checks every rule again (INV-13, INV-14) and reveals.

-- name: rating_task
-- What a rating's rules look at: the task's parties, state and window.
SELECT id, poster_id, worker_id, state, title, completed_at + interval '7 days' AS window_closes_at
  FROM tasks WHERE id = %(task_id)s;

-- name: rating_of
-- The caller's rating of the task, if any.
SELECT id FROM ratings WHERE task_id = %(task_id)s AND rater_id = %(rater_id)s;

-- name: insert_rating
-- The trigger derives the rated user and their role, and reveals both when this is the second.
INSERT INTO ratings (task_id, rater_id, stars, comment, tags)
VALUES (%(task_id)s, %(rater_id)s, %(stars)s, %(comment)s, %(tags)s)
RETURNING id;

-- name: task_ratings
SELECT id, task_id, rater_id, ratee_id, ratee_role, stars, comment, tags, is_auto, created_at, revealed_at
  FROM ratings WHERE task_id = %(task_id)s
 ORDER BY created_at, id;

-- name: rating_summary
-- A user's revealed ratings in one role: automatic ones counted, never averaged.
SELECT count(*)::int AS count,
       (count(*) FILTER (WHERE is_auto))::int AS automatic_count,
       round(avg(stars) FILTER (WHERE NOT is_auto), 2) AS average_stars,
       ARRAY[(count(*) FILTER (WHERE NOT is_auto AND stars = 1))::int,
             (count(*) FILTER (WHERE NOT is_auto AND stars = 2))::int,
             (count(*) FILTER (WHERE NOT is_auto AND stars = 3))::int,
             (count(*) FILTER (WHERE NOT is_auto AND stars = 4))::int,
             (count(*) FILTER (WHERE NOT is_auto AND stars = 5))::int] AS distribution
  FROM ratings
 WHERE ratee_id = %(user_id)s AND ratee_role = %(role)s AND revealed_at IS NOT NULL;

-- name: rating_user_exists
SELECT EXISTS (SELECT 1 FROM users WHERE id = %(user_id)s);

-- name: due_rating_windows
-- Windows that have closed without both ratings, oldest first; locked so that two runs of
-- rating.close take different ones.
SELECT w.task_id AS id, t.poster_id, t.worker_id, t.title
  FROM rating_windows w JOIN tasks t ON t.id = w.task_id
 WHERE w.closes_at <= now()
 ORDER BY w.closes_at, w.task_id
 LIMIT %(batch)s
   FOR UPDATE OF w SKIP LOCKED;

-- name: insert_auto_ratings
-- A 5-star automatic rating for each direction nobody rated (the trigger then reveals both).
INSERT INTO ratings (task_id, rater_id, stars, is_auto)
SELECT t.id, party.rater_id, 5, true
  FROM tasks t CROSS JOIN LATERAL (VALUES (t.poster_id), (t.worker_id)) AS party (rater_id)
 WHERE t.id = %(task_id)s
   AND NOT EXISTS (SELECT 1 FROM ratings r WHERE r.task_id = t.id AND r.rater_id = party.rater_id)
ON CONFLICT (task_id, rater_id) DO NOTHING;
