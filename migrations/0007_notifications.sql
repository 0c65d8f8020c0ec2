-- depends: 0006_xp
-- In-app notifications, and the idempotency keys of retried mutations.

CREATE TABLE notifications (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind       text        NOT NULL CONSTRAINT notifications_kind CHECK (kind IN (
                   'TASK_ACCEPTED', 'TASK_CANCELLED', 'TASK_EXPIRED', 'PROOF_SUBMITTED', 'PROOF_ACCEPTED',
                   'PROOF_REJECTED', 'DISPUTE_OPENED', 'DISPUTE_RESOLVED', 'ESCROW_FUNDED', 'ESCROW_RELEASED',
                   'ESCROW_REFUNDED', 'XP_EARNED', 'LEVEL_UP', 'TRUST_TIER_CHANGED', 'VERIFICATION_APPROVED',
                   'VERIFICATION_REJECTED', 'VERIFICATION_EXPIRED')),
    title      text        NOT NULL CONSTRAINT notifications_title_length CHECK (char_length(title) BETWEEN 1 AND 200),
    body       text        NOT NULL DEFAULT '' CONSTRAINT notifications_body_length CHECK (char_length(body) <= 2000),
    task_id    uuid        REFERENCES tasks (id),
    data       jsonb       NOT NULL DEFAULT '{}'::jsonb CONSTRAINT notifications_data_object CHECK (jsonb_typeof(data) = 'object'),
    created_at timestamptz NOT NULL DEFAULT now(),
    read_at    timestamptz,
    CONSTRAINT notifications_read_after_created CHECK (read_at IS NULL OR read_at >= created_at)
);
CREATE INDEX notifications_user_idx ON notifications (user_id, created_at DESC, id DESC);
COMMENT ON INDEX notifications_user_idx IS 'A user''s notifications, newest first (keyset on created_at, id).';
CREATE INDEX notifications_unread_idx ON notifications (user_id, created_at DESC) WHERE read_at IS NULL;
COMMENT ON INDEX notifications_unread_idx IS 'The unread count and the unread list.';

-- A notification is read once; its content never changes.
CREATE FUNCTION notifications_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.id, NEW.user_id, NEW.kind, NEW.title, NEW.body, NEW.task_id, NEW.data, NEW.created_at)
       IS DISTINCT FROM (OLD.id, OLD.user_id, OLD.kind, OLD.title, OLD.body, OLD.task_id, OLD.data, OLD.created_at)
       OR (OLD.read_at IS NOT NULL AND NEW.read_at IS DISTINCT FROM OLD.read_at) THEN
        PERFORM hx_raise('HX003', 'a notification is only ever marked read');
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER notifications_guard BEFORE UPDATE ON notifications FOR EACH ROW EXECUTE FUNCTION notifications_guard();

-- Idempotency keys: the first response of a retried mutation, replayed for the same key.
CREATE TABLE idempotency_keys (
    user_id      uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    method       text        NOT NULL CONSTRAINT idempotency_method_format CHECK (method ~ '^/[A-Za-z0-9_.]+/[A-Za-z0-9_]+$'),
    key          text        NOT NULL CONSTRAINT idempotency_key_length_hx301 CHECK (char_length(key) BETWEEN 1 AND 255),
    -- SHA-256 of the request message: the same key with another request is refused
    request_hash bytea       NOT NULL CONSTRAINT idempotency_request_hash_sha256 CHECK (octet_length(request_hash) = 32),
    -- the serialized response (NULL while the first call is still running)
    response     bytea,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL DEFAULT now() + interval '24 hours',
    PRIMARY KEY (user_id, method, key),
    CONSTRAINT idempotency_expiry_after_creation CHECK (expires_at > created_at)
);
CREATE INDEX idempotency_keys_expiry_idx ON idempotency_keys (expires_at);
COMMENT ON INDEX idempotency_keys_expiry_idx IS 'The clean-up of expired keys.';

-- A recorded response is final.
CREATE FUNCTION idempotency_keys_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.response IS NOT NULL OR NEW.request_hash <> OLD.request_hash THEN
        PERFORM hx_raise('HX003', 'an idempotency key''s request and response are final');
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER idempotency_keys_guard BEFORE UPDATE ON idempotency_keys
    FOR EACH ROW EXECUTE FUNCTION idempotency_keys_guard();
