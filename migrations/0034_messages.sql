-- depends: 0033_notifications_api
-- Task messaging (DOMAIN.md "Task messaging"): one thread per task between its poster and its
-- worker, photos through the upload flow (the new MESSAGE_PHOTO purpose), each reader's setting
-- for read receipts. The rules live here: INV-11 (who may write, and when), INV-12 (length,
-- photos, immutability), INV-17 for messaging (an inactive account cannot write), the refusal
-- of contact details (HX812) and the hourly and daily limits (HX501).

-- MESSAGE_PHOTO: 5 MB, JPEG/PNG/HEIC, under messages/<task>/<upload> (the key names the thread
-- the photo was made for; a message may only carry photos of its own thread).
ALTER TABLE uploads DROP CONSTRAINT uploads_purpose_hx301;
ALTER TABLE uploads ADD CONSTRAINT uploads_purpose_hx301
    CHECK (purpose IN ('AVATAR', 'PROOF_PHOTO', 'VERIFICATION_DOC', 'MESSAGE_PHOTO'));
ALTER TABLE uploads DROP CONSTRAINT uploads_type_and_size_hx301;
ALTER TABLE uploads ADD CONSTRAINT uploads_type_and_size_hx301 CHECK (
    (purpose = 'PROOF_PHOTO' AND declared_size BETWEEN 1 AND 10 * 1024 * 1024
        AND content_type IN ('image/jpeg', 'image/png', 'image/heic', 'image/webp'))
    OR (purpose = 'AVATAR' AND declared_size BETWEEN 1 AND 5 * 1024 * 1024
        AND content_type IN ('image/jpeg', 'image/png', 'image/webp'))
    OR (purpose = 'VERIFICATION_DOC' AND declared_size BETWEEN 1 AND 25 * 1024 * 1024
        AND content_type IN ('image/jpeg', 'image/png', 'application/pdf'))
    OR (purpose = 'MESSAGE_PHOTO' AND declared_size BETWEEN 1 AND 5 * 1024 * 1024
        AND content_type IN ('image/jpeg', 'image/png', 'image/heic')));
ALTER TABLE uploads ADD CONSTRAINT uploads_message_photo_key_hx301 CHECK (
    purpose <> 'MESSAGE_PHOTO' OR object_key ~ ('^messages/[0-9a-f-]{36}/' || id::text || '$'));

-- HX812: a link, an email address or a phone number (10 digits or more, with at most two of
-- " ().+-" between digits). server/domain/messages.py applies the same patterns, so that the
-- error names the field; tests/invariants/test_messages.py checks the two agree.
CREATE FUNCTION message_has_contact(content text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT COALESCE(
        content ~* '[a-z0-9._%+-]+@[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,}'
        OR content ~* '(https?://|www\.)'
        OR content ~* '[a-z0-9-]+\.(com|net|org|io|app|co|me|info|biz|ly|gg|xyz|dev|link|us)([^a-z0-9]|$)'
        OR content ~ '[0-9]([ ().+-]{0,2}[0-9]){9}',
        false)
$$;
COMMENT ON FUNCTION message_has_contact(text) IS 'HX812: whether a message''s text carries a link, an email address or a phone number.';

-- Whether a task's thread may still be written to (INV-11) and whether it was ever disputed
-- (a disputed task's thread is kept, and admins may read it). A task reaches DISPUTED only
-- through the transition that stamps disputed_at, which no later transition clears.
CREATE FUNCTION thread_writable(state text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT state IN ('ACCEPTED', 'PROOF_SUBMITTED', 'DISPUTED') $$;

-- A reader's setting: read receipts (on unless turned off). No row: the defaults.
CREATE TABLE message_settings (
    user_id       uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    read_receipts boolean     NOT NULL DEFAULT true,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE messages (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    task_id       uuid        NOT NULL REFERENCES tasks (id),
    sender_id     uuid        NOT NULL REFERENCES users (id),
    -- the task's other party, set by the insert trigger
    recipient_id  uuid        NOT NULL REFERENCES users (id),
    body          text        CONSTRAINT messages_text_length_hx804
                              CHECK (char_length(body) <= 500 AND char_length(btrim(body)) >= 1),
    photo_ids     uuid[]      NOT NULL DEFAULT '{}'
                              CONSTRAINT messages_photo_count_hx803
                              CHECK (cardinality(photo_ids) <= 3 AND array_position(photo_ids, NULL) IS NULL
                                     AND COALESCE(array_ndims(photo_ids), 1) = 1),
    caption       text        CONSTRAINT messages_caption_length_hx804
                              CHECK (char_length(caption) <= 200 AND char_length(btrim(caption)) >= 1),
    created_at    timestamptz NOT NULL DEFAULT now(),
    read_at       timestamptz,
    hidden_at     timestamptz,
    hidden_by     uuid        REFERENCES users (id),
    hidden_reason text        CONSTRAINT messages_hidden_reason_hx301
                              CHECK (char_length(btrim(hidden_reason)) BETWEEN 1 AND 1000),
    CONSTRAINT messages_not_empty_hx804 CHECK (body IS NOT NULL OR cardinality(photo_ids) > 0),
    CONSTRAINT messages_caption_needs_photos_hx301 CHECK (caption IS NULL OR cardinality(photo_ids) > 0),
    CONSTRAINT messages_no_contact_hx812 CHECK (NOT message_has_contact(body) AND NOT message_has_contact(caption)),
    CONSTRAINT messages_between_two CHECK (recipient_id <> sender_id),
    CONSTRAINT messages_hidden_is_complete CHECK (
        (hidden_at IS NULL) = (hidden_by IS NULL) AND (hidden_at IS NULL) = (hidden_reason IS NULL)),
    CONSTRAINT messages_read_after_sent CHECK (read_at IS NULL OR read_at >= created_at)
);
CREATE INDEX messages_thread_idx ON messages (task_id, created_at DESC, id DESC);
COMMENT ON INDEX messages_thread_idx IS 'A thread, newest first (keyset on created_at, id); the purge by task.';
CREATE INDEX messages_sender_idx ON messages (sender_id, created_at);
COMMENT ON INDEX messages_sender_idx IS 'The hourly and daily limits: what one sender sent lately.';
CREATE INDEX messages_unread_idx ON messages (recipient_id, task_id) WHERE read_at IS NULL AND hidden_at IS NULL;
COMMENT ON INDEX messages_unread_idx IS 'Unread counts per thread and in total.';

-- INV-11, INV-12 (photos), INV-17 and the limits, on every new message.
CREATE FUNCTION messages_insert_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    task   record;
    photo  uploads%ROWTYPE;
    pid    uuid;
    sent   bigint;
BEGIN
    -- FOR SHARE: a concurrent transition of the task waits for this message, or this message
    -- sees the task's new state.
    SELECT id, poster_id, worker_id, state INTO task FROM tasks WHERE id = NEW.task_id FOR SHARE;
    IF NOT FOUND THEN
        PERFORM hx_raise('HX302', format('task %s does not exist', NEW.task_id));
    END IF;
    IF NEW.sender_id IS DISTINCT FROM task.poster_id AND NEW.sender_id IS DISTINCT FROM task.worker_id THEN
        PERFORM hx_raise('HX802', 'only the task''s poster and worker write in its thread');
    END IF;
    IF NOT COALESCE(account_active(NEW.sender_id), false) THEN
        PERFORM hx_raise('HX405', 'a suspended or banned account cannot send messages');
    END IF;
    IF NOT thread_writable(task.state) THEN
        PERFORM hx_raise('HX801', format('the thread is closed: the task is %s', task.state));
    END IF;
    IF num_nonnulls(NEW.read_at, NEW.hidden_at, NEW.hidden_by, NEW.hidden_reason) > 0 THEN
        PERFORM hx_raise('HX301', 'a message starts unread and visible');
    END IF;
    NEW.recipient_id := CASE WHEN NEW.sender_id = task.poster_id THEN task.worker_id ELSE task.poster_id END;
    NEW.created_at := now();  -- the limits count by it: nobody backdates a message

    IF (SELECT count(DISTINCT p) FROM unnest(NEW.photo_ids) p) <> cardinality(NEW.photo_ids) THEN
        PERFORM hx_raise('HX803', 'a photo appears twice in the message');
    END IF;
    -- a photo is sent once (its upload goes with its message when the purge comes)
    IF cardinality(NEW.photo_ids) > 0
       AND EXISTS (SELECT 1 FROM messages WHERE task_id = NEW.task_id AND photo_ids && NEW.photo_ids) THEN
        PERFORM hx_raise('HX803', 'a photo was sent before');
    END IF;
    FOREACH pid IN ARRAY NEW.photo_ids LOOP
        SELECT * INTO photo FROM uploads WHERE id = pid;
        IF NOT FOUND OR photo.owner_id <> NEW.sender_id OR photo.purpose <> 'MESSAGE_PHOTO'
           OR photo.object_key <> format('messages/%s/%s', NEW.task_id, pid) THEN
            PERFORM hx_raise('HX803', format('upload %s is not a message photo of the sender for this task', pid));
        END IF;
        IF photo.state <> 'READY' THEN
            PERFORM hx_raise('HX803', format('upload %s is %s, not READY', pid, photo.state));
        END IF;
    END LOOP;

    -- Limits: 10 messages an hour per sender and task, 100 a day per sender, 50 photos a day.
    -- One sender's messages are counted one at a time (the lock lasts until commit).
    PERFORM pg_advisory_xact_lock(hashtextextended('hustle.messages:' || NEW.sender_id::text, 0));
    SELECT count(*) INTO sent FROM messages
     WHERE sender_id = NEW.sender_id AND task_id = NEW.task_id AND created_at > now() - interval '1 hour';
    IF sent >= 10 THEN
        PERFORM hx_raise('HX501', 'at most 10 messages an hour in one thread');
    END IF;
    SELECT count(*) INTO sent FROM messages
     WHERE sender_id = NEW.sender_id AND created_at > now() - interval '1 day';
    IF sent >= 100 THEN
        PERFORM hx_raise('HX501', 'at most 100 messages a day');
    END IF;
    IF cardinality(NEW.photo_ids) > 0 THEN
        SELECT COALESCE(sum(cardinality(photo_ids)), 0) INTO sent FROM messages
         WHERE sender_id = NEW.sender_id AND created_at > now() - interval '1 day';
        IF sent + cardinality(NEW.photo_ids) > 50 THEN
            PERFORM hx_raise('HX501', 'at most 50 message photos a day');
        END IF;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER messages_insert_guard BEFORE INSERT ON messages
    FOR EACH ROW EXECUTE FUNCTION messages_insert_guard();

-- INV-12: a message never changes, except that its recipient reads it (read_at, once) and an
-- admin hides it (hidden_at, hidden_by, hidden_reason, once).
CREATE FUNCTION messages_update_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.id, NEW.task_id, NEW.sender_id, NEW.recipient_id, NEW.body, NEW.photo_ids, NEW.caption, NEW.created_at)
       IS DISTINCT FROM
       (OLD.id, OLD.task_id, OLD.sender_id, OLD.recipient_id, OLD.body, OLD.photo_ids, OLD.caption, OLD.created_at) THEN
        PERFORM hx_raise('HX102', 'a message cannot be edited');
    END IF;
    IF OLD.read_at IS NOT NULL AND NEW.read_at IS DISTINCT FROM OLD.read_at THEN
        PERFORM hx_raise('HX102', 'a message is read once');
    END IF;
    IF OLD.hidden_at IS NOT NULL
       AND (NEW.hidden_at, NEW.hidden_by, NEW.hidden_reason) IS DISTINCT FROM (OLD.hidden_at, OLD.hidden_by, OLD.hidden_reason) THEN
        PERFORM hx_raise('HX102', 'a hidden message stays hidden');
    END IF;
    IF NEW.hidden_by IS DISTINCT FROM OLD.hidden_by
       AND NOT COALESCE((SELECT is_admin FROM users WHERE id = NEW.hidden_by), false) THEN
        PERFORM hx_raise('HX205', 'only an admin hides a message');
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER messages_update_guard BEFORE UPDATE ON messages
    FOR EACH ROW EXECUTE FUNCTION messages_update_guard();

-- INV-12: the only DELETE is the purge's: 90 days after the task's terminal transition, and
-- never for a task that was ever disputed (message.purge, jobs/schedules.py).
CREATE FUNCTION message_purgeable(task_id uuid) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT t.state IN ('COMPLETED', 'CANCELLED', 'EXPIRED') AND t.disputed_at IS NULL
           AND COALESCE(t.completed_at, t.cancelled_at, t.expired_at) <= now() - interval '90 days'
      FROM tasks t WHERE t.id = task_id
$$;
COMMENT ON FUNCTION message_purgeable(uuid) IS 'INV-12: whether a task''s messages are past keeping (and so may be deleted).';

CREATE FUNCTION messages_delete_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT COALESCE(message_purgeable(OLD.task_id), false) THEN
        PERFORM hx_raise('HX102', 'messages are deleted only by the purge, 90 days after their task ended');
    END IF;
    RETURN OLD;
END $$;
CREATE TRIGGER messages_delete_guard BEFORE DELETE ON messages
    FOR EACH ROW EXECUTE FUNCTION messages_delete_guard();
CREATE TRIGGER messages_no_truncate BEFORE TRUNCATE ON messages
    FOR EACH STATEMENT EXECUTE FUNCTION reject_ledger_change();
