-- Watch streams (migration 0037): the event log the hubs read, the catch-up of a resumed stream,
-- and the checks a stream makes. Cursors are `seq` (never `id`): see the migration.

-- name: watch_sequence
-- Number what has committed since; the highest cursor there is now.
SELECT watch_sequence(%(batch)s);

-- name: watch_read
-- Every event after the hub's cursor, in cursor order (one read per wake-up, for every stream).
SELECT seq, kind, task_id, user_id, data, created_at
  FROM watch_events
 WHERE seq > %(after)s
 ORDER BY seq
 LIMIT %(limit)s;

-- name: watch_bounds
-- Which cursors can still be resumed from: those from the purge horizon to the newest event.
SELECT h.purged_through,
       GREATEST(h.purged_through, COALESCE((SELECT max(seq) FROM watch_events), 0)) AS latest
  FROM (SELECT COALESCE((SELECT purged_through FROM watch_horizon), 0) AS purged_through) h;

-- name: watch_task_events
-- One task's events after a cursor (a resumed WatchTask).
SELECT seq, kind, task_id, user_id, data, created_at
  FROM watch_events
 WHERE task_id = %(task_id)s AND seq > %(after)s AND kind = ANY(%(kinds)s::text[])
 ORDER BY seq
 LIMIT %(limit)s;

-- name: watch_user_events
-- One user's events after a cursor (a resumed WatchNotifications).
SELECT seq, kind, task_id, user_id, data, created_at
  FROM watch_events
 WHERE user_id = %(user_id)s AND seq > %(after)s AND kind = ANY(%(kinds)s::text[])
 ORDER BY seq
 LIMIT %(limit)s;

-- name: watch_feed_events
-- Task changes after a cursor that may concern the caller's feed (a resumed WatchFeed): those in
-- the caller's state that took a task into the open, funded set (kept only when the caller may
-- take the task now, by the feed's own predicate) or out of it. Distance and urgency are then
-- checked in process, as for live events.
SELECT e.seq, e.kind, e.task_id, e.user_id, e.data, e.created_at
  FROM capability_profiles p
  JOIN watch_events e ON e.seq > %(after)s AND e.kind = 'TASK_CHANGED'
                     AND e.data ->> 'location_state' = p.location_state
 WHERE p.user_id = %(user_id)s
   AND CASE
         WHEN e.data ->> 'state' = 'OPEN' AND (e.data ->> 'funded')::boolean
              THEN NOT (e.data ->> 'previous_state' = 'OPEN' AND (e.data ->> 'was_funded')::boolean)
                   AND is_eligible(p.user_id, e.task_id)
         ELSE e.data ->> 'previous_state' = 'OPEN' AND (e.data ->> 'was_funded')::boolean
       END
 ORDER BY e.seq
 LIMIT %(limit)s;

-- name: watch_eligible_users
-- Which of these users may take the task now: the feed's predicate, once for every stream a
-- task's entry into the open, funded set concerns.
SELECT p.user_id
  FROM tasks t JOIN capability_profiles p ON p.user_id = ANY(%(user_ids)s::uuid[])
 WHERE t.id = %(task_id)s AND is_eligible(t, p);

-- name: watch_task_parties
-- Who may watch a task: its poster, its worker (and admins).
SELECT poster_id, worker_id FROM tasks WHERE id = %(task_id)s;

-- name: watch_profile_state
-- The state a worker's feed shows tasks of (NULL: no profile yet, nothing is eligible).
SELECT location_state::text FROM capability_profiles WHERE user_id = %(user_id)s;

-- name: watch_unread_count
SELECT count(*) FROM notifications WHERE user_id = %(user_id)s AND read_at IS NULL;

-- name: watch_purge
-- Delete the events older than the retention (every cursor up to the newest of them) and move
-- the horizon there; how many went.
WITH horizon AS (
    SELECT max(seq) AS upto FROM watch_events
     WHERE created_at < now() - make_interval(hours => %(hours)s) AND seq IS NOT NULL),
gone AS (
    DELETE FROM watch_events e USING horizon h
     WHERE e.seq <= h.upto AND e.created_at < now() - interval '1 hour' RETURNING e.seq),
moved AS (
    INSERT INTO watch_horizon (only_row, purged_through)
    SELECT true, max(seq) FROM gone HAVING count(*) > 0
    ON CONFLICT (only_row) DO UPDATE
       SET purged_through = GREATEST(watch_horizon.purged_through, EXCLUDED.purged_through))
SELECT count(*) FROM gone;
