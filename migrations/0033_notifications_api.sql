-- depends: 0032_part2_foundation
-- The notifications API (issue 17; DOMAIN.md "Notifications API"): how each user wants to be
-- told (preferences per kind × channel), when (quiet hours in their time zone), the opt-in SMS
-- about urgent tasks nearby with its caps, and the outbox rows that follow from them.
-- A notification's read_at is set once and never cleared (0007's notifications_guard, HX003).

-- A time zone the database knows, by its IANA name (America/Chicago, Etc/GMT+5) or UTC; not an
-- abbreviation (EST) or a POSIX rule (UTC+5), which Postgres would also take.
CREATE FUNCTION is_time_zone(zone text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    IF zone IS NULL OR zone !~ '^(UTC|[A-Z][A-Za-z_]+(/[A-Za-z0-9_+-]+){1,2})$' THEN
        RETURN false;
    END IF;
    PERFORM '2000-01-01 00:00+00'::timestamptz AT TIME ZONE zone;
    RETURN true;
EXCEPTION WHEN invalid_parameter_value THEN
    RETURN false;
END $$;
COMMENT ON FUNCTION is_time_zone(text) IS 'An IANA time zone name the database can convert with (users.time_zone).';

-- The user's own time zone; NULL: their home state's (state_time_zone).
ALTER TABLE users ADD COLUMN time_zone text
    CONSTRAINT users_time_zone_hx301 CHECK (time_zone IS NULL OR is_time_zone(time_zone));

-- The time zone most of a state lives in (the default of users.time_zone).
CREATE FUNCTION state_time_zone(state text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN state IN ('AL', 'AR', 'IA', 'IL', 'KS', 'LA', 'MN', 'MO', 'MS', 'ND', 'NE', 'OK', 'SD',
                       'TN', 'TX', 'WI') THEN 'America/Chicago'
        WHEN state IN ('CO', 'ID', 'MT', 'NM', 'UT', 'WY') THEN 'America/Denver'
        WHEN state = 'AZ' THEN 'America/Phoenix'
        WHEN state IN ('CA', 'NV', 'OR', 'WA') THEN 'America/Los_Angeles'
        WHEN state = 'AK' THEN 'America/Anchorage'
        WHEN state = 'HI' THEN 'Pacific/Honolulu'
        WHEN state = 'PR' THEN 'America/Puerto_Rico'
        ELSE 'America/New_York'
    END
$$;

-- One row per user who changed a default (no row: every default). Quiet hours are minutes of
-- the day in the user's time zone, from start (inclusive) to end (exclusive), across midnight
-- when start > end. Urgent SMS: a saved point, a radius and the user's own daily cap.
CREATE TABLE notification_settings (
    user_id             uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    quiet_hours_enabled boolean     NOT NULL DEFAULT true,
    quiet_start_minute  smallint    NOT NULL DEFAULT 1320
                        CONSTRAINT notification_settings_quiet_start_hx301 CHECK (quiet_start_minute BETWEEN 0 AND 1439),
    quiet_end_minute    smallint    NOT NULL DEFAULT 480
                        CONSTRAINT notification_settings_quiet_end_hx301 CHECK (quiet_end_minute BETWEEN 0 AND 1439),
    urgent_location     geography(Point, 4326),
    urgent_radius_m     integer     NOT NULL DEFAULT 5000
                        CONSTRAINT notification_settings_urgent_radius_hx301 CHECK (urgent_radius_m BETWEEN 100 AND 16000),
    urgent_daily_cap    smallint    NOT NULL DEFAULT 3
                        CONSTRAINT notification_settings_urgent_daily_cap_hx301 CHECK (urgent_daily_cap BETWEEN 1 AND 20),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT notification_settings_quiet_window_hx301 CHECK (quiet_start_minute <> quiet_end_minute)
);
CREATE INDEX notification_settings_urgent_idx ON notification_settings USING gist (urgent_location)
    WHERE urgent_location IS NOT NULL;
COMMENT ON INDEX notification_settings_urgent_idx IS 'The urgent fan-out: users whose saved point is near a task (ST_DWithin).';

-- A user's choice for one kind on one channel (no row: the default, IN_APP and EMAIL on, SMS
-- off). IN_APP cannot be turned off.
CREATE TABLE notification_preferences (
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind       text        NOT NULL CONSTRAINT notification_preferences_kind_hx301 CHECK (kind IN (
                   'TASK_ACCEPTED', 'TASK_CANCELLED', 'TASK_EXPIRED', 'PROOF_SUBMITTED', 'PROOF_ACCEPTED',
                   'PROOF_REJECTED', 'DISPUTE_OPENED', 'DISPUTE_RESOLVED', 'ESCROW_FUNDED', 'ESCROW_RELEASED',
                   'ESCROW_REFUNDED', 'XP_EARNED', 'LEVEL_UP', 'TRUST_TIER_CHANGED', 'VERIFICATION_APPROVED',
                   'VERIFICATION_REJECTED', 'VERIFICATION_EXPIRED',
                   'NEW_MESSAGE', 'RATING_REQUESTED', 'RATINGS_REVEALED', 'URGENT_TASK_NEARBY',
                   'ACCOUNT_SUSPENDED', 'ACCOUNT_REINSTATED')),
    channel    text        NOT NULL CONSTRAINT notification_preferences_channel_hx301 CHECK (channel IN ('IN_APP', 'EMAIL', 'SMS')),
    enabled    boolean     NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, kind, channel),
    CONSTRAINT notification_preferences_in_app_always_hx301 CHECK (channel <> 'IN_APP' OR enabled)
);

-- Whether a user wants `kind` on `channel` (their row, else the default).
CREATE FUNCTION notification_wanted(who uuid, what text, via text) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT via = 'IN_APP' OR COALESCE(
        (SELECT p.enabled FROM notification_preferences p
          WHERE p.user_id = who AND p.kind = what AND p.channel = via),
        via = 'EMAIL')
$$;

-- Urgent SMS need a verified phone and a saved point, whichever row changes (HX301).
CREATE FUNCTION notification_preferences_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.kind = 'URGENT_TASK_NEARBY' AND NEW.channel = 'SMS' AND NEW.enabled THEN
        IF NOT EXISTS (SELECT 1 FROM users WHERE id = NEW.user_id AND phone_verified_at IS NOT NULL) THEN
            PERFORM hx_raise('HX301', 'Urgent SMS need a verified phone number.');
        END IF;
        IF NOT EXISTS (SELECT 1 FROM notification_settings
                        WHERE user_id = NEW.user_id AND urgent_location IS NOT NULL) THEN
            PERFORM hx_raise('HX301', 'Urgent SMS need a saved location.');
        END IF;
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END $$;
CREATE TRIGGER notification_preferences_guard BEFORE INSERT OR UPDATE ON notification_preferences
    FOR EACH ROW EXECUTE FUNCTION notification_preferences_guard();

CREATE FUNCTION notification_settings_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.urgent_location IS NULL AND notification_wanted(NEW.user_id, 'URGENT_TASK_NEARBY', 'SMS') THEN
        PERFORM hx_raise('HX301', 'Urgent SMS need a saved location: turn them off first.');
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END $$;
CREATE TRIGGER notification_settings_guard BEFORE UPDATE ON notification_settings
    FOR EACH ROW EXECUTE FUNCTION notification_settings_guard();

-- When quiet hours that contain `moment` end, for a window of minutes [start, end) of the local day
-- in `zone` (across midnight when start > end); NULL when `moment` is outside them.
CREATE FUNCTION quiet_window_end(moment timestamptz, zone text, start_minute integer, end_minute integer)
RETURNS timestamptz
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
    local_time timestamp := moment AT TIME ZONE zone;
    now_minute integer := extract(hour FROM local_time)::integer * 60 + extract(minute FROM local_time)::integer;
    today date := local_time::date;
BEGIN
    IF start_minute > end_minute THEN
        IF now_minute >= start_minute THEN
            RETURN ((today + 1) + make_interval(mins => end_minute)) AT TIME ZONE zone;
        ELSIF now_minute < end_minute THEN
            RETURN (today + make_interval(mins => end_minute)) AT TIME ZONE zone;
        END IF;
    ELSIF now_minute >= start_minute AND now_minute < end_minute THEN
        RETURN (today + make_interval(mins => end_minute)) AT TIME ZONE zone;
    END IF;
    RETURN NULL;
END $$;

-- When the user's quiet hours around `moment` end; NULL when they are not in quiet hours (or have
-- turned them off). Defaults: on, 22:00-08:00, the user's zone or their state's.
CREATE FUNCTION quiet_hours_end(who uuid, moment timestamptz) RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN COALESCE(s.quiet_hours_enabled, true)
                THEN quiet_window_end(moment, COALESCE(u.time_zone, state_time_zone(u.location_state)),
                                      COALESCE(s.quiet_start_minute, 1320), COALESCE(s.quiet_end_minute, 480))
           END
      FROM users u LEFT JOIN notification_settings s ON s.user_id = u.id
     WHERE u.id = who
$$;

-- Every urgent-task SMS the fan-out decided, sent or dropped: one per task and user, so a
-- rerun sends nothing twice; the SENT rows are what the caps count.
CREATE TABLE urgent_sms_sends (
    task_id    uuid        NOT NULL REFERENCES tasks (id),
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    outcome    text        NOT NULL CONSTRAINT urgent_sms_sends_outcome CHECK (outcome IN (
                   'SENT', 'DROPPED_QUIET_HOURS', 'DROPPED_HOURLY_CAP', 'DROPPED_DAILY_CAP', 'DROPPED_OWN_CAP')),
    distance_m integer     NOT NULL CONSTRAINT urgent_sms_sends_distance CHECK (distance_m BETWEEN 0 AND 16000),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (task_id, user_id)
);
CREATE INDEX urgent_sms_sends_sent_idx ON urgent_sms_sends (user_id, created_at DESC) WHERE outcome = 'SENT';
COMMENT ON INDEX urgent_sms_sends_sent_idx IS 'The caps: a user''s urgent SMS sent in the last hour and day.';
CREATE INDEX urgent_sms_sends_created_idx ON urgent_sms_sends (created_at);
COMMENT ON INDEX urgent_sms_sends_created_idx IS 'notification.purge: rows by age.';

-- The caps, whoever inserts: at most 5 urgent SMS an hour and 20 a day (rolling) to one user,
-- and no more a day than the user's own cap (HX501). Inserted only by urgent_fanout(), which
-- locks the user's settings row first, so concurrent fan-outs count each other.
CREATE FUNCTION urgent_sms_sends_caps() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    last_hour integer;
    last_day integer;
BEGIN
    IF NEW.outcome = 'SENT' THEN
        SELECT count(*) FILTER (WHERE created_at > now() - interval '1 hour'), count(*)
          INTO last_hour, last_day
          FROM urgent_sms_sends
         WHERE user_id = NEW.user_id AND outcome = 'SENT' AND created_at > now() - interval '24 hours';
        IF last_hour >= 5 OR last_day >= LEAST(20, COALESCE(
               (SELECT urgent_daily_cap FROM notification_settings WHERE user_id = NEW.user_id), 3)) THEN
            PERFORM hx_raise('HX501', 'This user has had as many urgent SMS as the caps allow.');
        END IF;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER urgent_sms_sends_caps BEFORE INSERT ON urgent_sms_sends
    FOR EACH ROW EXECUTE FUNCTION urgent_sms_sends_caps();
CREATE TRIGGER urgent_sms_sends_append_only BEFORE UPDATE ON urgent_sms_sends
    FOR EACH ROW EXECUTE FUNCTION reject_ledger_change();

-- The fan-out of an urgent task: every user who opted in to urgent SMS, has a verified phone and
-- an active account, is eligible for the task and whose saved point is within their radius,
-- and who has not been considered for this task before. Each gets a urgent_sms_sends row, SENT
-- or dropped (quiet hours, caps); the rows written are returned (a rerun returns none).
CREATE FUNCTION urgent_fanout(task uuid)
RETURNS TABLE (recipient_id uuid, recipient_phone text, decided text, meters integer)
LANGUAGE plpgsql AS $$
DECLARE
    t tasks;
    c record;
    last_hour integer;
    last_day integer;
    result text;
BEGIN
    SELECT * INTO t FROM tasks WHERE id = task;
    IF NOT FOUND OR t.state <> 'OPEN' OR t.funded_at IS NULL OR NOT t.urgent THEN
        RETURN;
    END IF;
    FOR c IN
        SELECT s.user_id AS uid, u.phone, s.urgent_daily_cap AS cap,
               round(ST_Distance(s.urgent_location, t.location))::integer AS distance
          FROM notification_settings s JOIN users u ON u.id = s.user_id
         WHERE s.urgent_location IS NOT NULL
           AND ST_DWithin(s.urgent_location, t.location, 16000)
           AND ST_DWithin(s.urgent_location, t.location, s.urgent_radius_m)
           AND u.phone_verified_at IS NOT NULL
           AND u.account_status = 'ACTIVE'
           AND notification_wanted(s.user_id, 'URGENT_TASK_NEARBY', 'SMS')
           AND is_eligible(s.user_id, t.id)
           AND NOT EXISTS (SELECT 1 FROM urgent_sms_sends x WHERE x.task_id = t.id AND x.user_id = s.user_id)
         ORDER BY s.user_id
           FOR UPDATE OF s
    LOOP
        SELECT count(*) FILTER (WHERE x.created_at > now() - interval '1 hour'), count(*)
          INTO last_hour, last_day
          FROM urgent_sms_sends x
         WHERE x.user_id = c.uid AND x.outcome = 'SENT' AND x.created_at > now() - interval '24 hours';
        result := CASE
            WHEN quiet_hours_end(c.uid, now()) IS NOT NULL THEN 'DROPPED_QUIET_HOURS'
            WHEN last_hour >= 5 THEN 'DROPPED_HOURLY_CAP'
            WHEN last_day >= 20 THEN 'DROPPED_DAILY_CAP'
            WHEN last_day >= c.cap THEN 'DROPPED_OWN_CAP'
            ELSE 'SENT'
        END;
        INSERT INTO urgent_sms_sends (task_id, user_id, outcome, distance_m)
        VALUES (t.id, c.uid, result, LEAST(c.distance, 16000))
        ON CONFLICT DO NOTHING;
        IF FOUND THEN
            recipient_id := c.uid;
            recipient_phone := c.phone;
            decided := result;
            meters := c.distance;
            RETURN NEXT;
        END IF;
    END LOOP;
END $$;

-- A task that becomes OPEN, funded and urgent (funding an urgent task, or marking a funded open
-- task urgent) queues its fan-out in the same transaction.
CREATE FUNCTION tasks_enqueue_urgent_fanout() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO outbox (job, payload) VALUES ('sms.urgent_fanout', jsonb_build_object('task_id', NEW.id));
    RETURN NULL;
END $$;
CREATE TRIGGER tasks_enqueue_urgent_fanout AFTER UPDATE OF state, funded_at, urgent ON tasks
    FOR EACH ROW
    WHEN (NEW.state = 'OPEN' AND NEW.funded_at IS NOT NULL AND NEW.urgent
          AND NOT (OLD.state = 'OPEN' AND OLD.funded_at IS NOT NULL AND OLD.urgent))
    EXECUTE FUNCTION tasks_enqueue_urgent_fanout();

-- notification.purge deletes rows older than 30 days by age.
CREATE INDEX notifications_created_idx ON notifications (created_at);
COMMENT ON INDEX notifications_created_idx IS 'notification.purge: rows by age.';
