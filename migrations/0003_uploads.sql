-- depends: 0002_identity
-- Uploads: files that clients put straight into S3 with a presigned POST. The database stores
-- keys (derived by the server), never URLs; only READY uploads can be attached to anything.

CREATE TABLE uploads (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id         uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose          text        NOT NULL
                     CONSTRAINT uploads_purpose_hx301 CHECK (purpose IN ('AVATAR', 'PROOF_PHOTO', 'VERIFICATION_DOC')),
    content_type     text        NOT NULL,
    declared_size    bigint      NOT NULL,
    -- the S3 key, chosen by the server: '<prefix>/<owner>/<upload id>'
    object_key       text        NOT NULL
                     CONSTRAINT uploads_object_key_format CHECK (object_key ~ '^[a-z][a-z0-9_-]*(/[A-Za-z0-9_.-]+)+$'),
    state            text        NOT NULL DEFAULT 'PENDING'
                     CONSTRAINT uploads_state CHECK (state IN ('PENDING', 'UPLOADED', 'READY', 'REJECTED', 'EXPIRED')),
    size_bytes       bigint      CONSTRAINT uploads_size_non_negative CHECK (size_bytes >= 0),
    sha256           bytea       CONSTRAINT uploads_sha256_length CHECK (octet_length(sha256) = 32),
    width            integer     CONSTRAINT uploads_width_positive CHECK (width > 0),
    height           integer     CONSTRAINT uploads_height_positive CHECK (height > 0),
    thumbnail_key    text,
    rejection_reason text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    uploaded_at      timestamptz,
    processed_at     timestamptz,
    -- DOMAIN.md's table of purposes (WebP is accepted for photos as well); settings may narrow it.
    CONSTRAINT uploads_type_and_size_hx301 CHECK (
        (purpose = 'PROOF_PHOTO' AND declared_size BETWEEN 1 AND 10 * 1024 * 1024
            AND content_type IN ('image/jpeg', 'image/png', 'image/heic', 'image/webp'))
        OR (purpose = 'AVATAR' AND declared_size BETWEEN 1 AND 5 * 1024 * 1024
            AND content_type IN ('image/jpeg', 'image/png', 'image/webp'))
        OR (purpose = 'VERIFICATION_DOC' AND declared_size BETWEEN 1 AND 25 * 1024 * 1024
            AND content_type IN ('image/jpeg', 'image/png', 'application/pdf'))),
    CONSTRAINT uploads_ready_is_described CHECK (
        state <> 'READY' OR (COALESCE(size_bytes, 0) > 0 AND sha256 IS NOT NULL AND processed_at IS NOT NULL)),
    CONSTRAINT uploads_rejected_has_reason CHECK (state <> 'REJECTED' OR rejection_reason IS NOT NULL)
);
CREATE UNIQUE INDEX uploads_object_key_key ON uploads (object_key);
COMMENT ON INDEX uploads_object_key_key IS 'One object per upload, and the lookup of an object by its key.';
CREATE INDEX uploads_owner_idx ON uploads (owner_id, created_at DESC);
COMMENT ON INDEX uploads_owner_idx IS 'A user''s uploads, newest first.';
CREATE INDEX uploads_pending_idx ON uploads (created_at) WHERE state = 'PENDING';
COMMENT ON INDEX uploads_pending_idx IS 'The clean-up of uploads that were never completed.';

-- PENDING → UPLOADED (the object exists) → READY | REJECTED (post-processing);
-- PENDING → EXPIRED (never uploaded). READY, REJECTED and EXPIRED are final.
CREATE FUNCTION upload_transition_allowed(from_state text, to_state text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (from_state, to_state) IN (('PENDING', 'UPLOADED'), ('PENDING', 'EXPIRED'),
                                      ('UPLOADED', 'READY'), ('UPLOADED', 'REJECTED'))
$$;

CREATE FUNCTION uploads_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.state <> 'PENDING' THEN
            PERFORM hx_raise('HX003', 'an upload starts PENDING');
        END IF;
        RETURN NEW;
    END IF;
    IF OLD.state IN ('READY', 'REJECTED', 'EXPIRED') AND ROW(NEW.*) IS DISTINCT FROM ROW(OLD.*) THEN
        PERFORM hx_raise('HX003', format('upload %s is %s: it cannot change', OLD.id, OLD.state));
    END IF;
    IF (NEW.owner_id, NEW.purpose, NEW.content_type, NEW.declared_size, NEW.object_key, NEW.created_at)
       IS DISTINCT FROM (OLD.owner_id, OLD.purpose, OLD.content_type, OLD.declared_size, OLD.object_key, OLD.created_at) THEN
        PERFORM hx_raise('HX003', 'an upload''s owner, purpose, type, size and key never change');
    END IF;
    IF NEW.state <> OLD.state THEN
        IF NOT upload_transition_allowed(OLD.state, NEW.state) THEN
            PERFORM hx_raise('HX003', format('illegal upload transition %s -> %s', OLD.state, NEW.state));
        END IF;
        IF NEW.state = 'UPLOADED' THEN
            NEW.uploaded_at := now();
        ELSIF NEW.state IN ('READY', 'REJECTED') THEN
            NEW.processed_at := COALESCE(NEW.processed_at, now());
        END IF;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER uploads_guard BEFORE INSERT OR UPDATE ON uploads FOR EACH ROW EXECUTE FUNCTION uploads_guard();

-- The one rule for attaching an upload anywhere: it is the user's own, of the right purpose, READY.
CREATE FUNCTION require_ready_upload(upload uuid, owner uuid, wanted_purpose text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    u uploads%ROWTYPE;
BEGIN
    SELECT * INTO u FROM uploads WHERE id = upload;
    IF NOT FOUND THEN
        PERFORM hx_raise('HX302', format('upload %s does not exist', upload));
    END IF;
    IF u.owner_id <> owner THEN
        PERFORM hx_raise('HX202', format('upload %s belongs to someone else', upload));
    END IF;
    IF u.purpose <> wanted_purpose THEN
        PERFORM hx_raise('HX301', format('upload %s is a %s, not a %s', upload, u.purpose, wanted_purpose));
    END IF;
    IF u.state <> 'READY' THEN
        PERFORM hx_raise('HX304', format('upload %s is %s, not READY', upload, u.state));
    END IF;
END $$;

ALTER TABLE users ADD CONSTRAINT users_avatar_upload_fkey
    FOREIGN KEY (avatar_upload_id) REFERENCES uploads (id) ON DELETE SET NULL;

CREATE FUNCTION users_avatar_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.avatar_upload_id IS NOT NULL
       AND NEW.avatar_upload_id IS DISTINCT FROM (CASE WHEN TG_OP = 'UPDATE' THEN OLD.avatar_upload_id END) THEN
        PERFORM require_ready_upload(NEW.avatar_upload_id, NEW.id, 'AVATAR');
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER users_avatar_guard BEFORE INSERT OR UPDATE OF avatar_upload_id ON users
    FOR EACH ROW EXECUTE FUNCTION users_avatar_guard();
