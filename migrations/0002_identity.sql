-- depends: 0001_foundation
-- Identity: users, sessions, one-time codes, the trust ledger, and the helpers every later
-- migration's triggers use.
--
-- Errors raised here carry an HX code (DOMAIN.md) as their SQLSTATE, or in a constraint's name
-- (`..._hx301`), so that server/errors.py gives the client the same typed error whichever
-- layer caught the violation.

-- Raise a client-facing error: the SQLSTATE is the HX code, the message is written for clients.
CREATE FUNCTION hx_raise(code text, message text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = code, MESSAGE = message;
END $$;

-- Append-only tables (ledgers): UPDATE, DELETE and TRUNCATE are refused (INV-7).
CREATE FUNCTION reject_ledger_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM hx_raise('HX102', format('%s is append-only: %s is not allowed', TG_TABLE_NAME, TG_OP));
    RETURN NULL;
END $$;

CREATE TABLE users (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email             text        NOT NULL
                      CONSTRAINT users_email_format_hx301
                      CHECK (email = lower(email) AND char_length(email) <= 254
                             AND email ~ '^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$'),
    email_verified_at timestamptz,
    -- argon2id only: a plain or weakly hashed password can never be stored
    password_hash     text        NOT NULL
                      CONSTRAINT users_password_hash_argon2id CHECK (password_hash LIKE '$argon2id$%'),
    full_name         text        NOT NULL
                      CONSTRAINT users_full_name_length_hx301
                      CHECK (char_length(btrim(full_name)) BETWEEN 1 AND 200),
    phone             text        CONSTRAINT users_phone_e164_hx301 CHECK (phone ~ '^\+[1-9][0-9]{6,14}$'),
    phone_verified_at timestamptz,
    default_mode      text        NOT NULL DEFAULT 'WORKER'
                      CONSTRAINT users_default_mode_hx301 CHECK (default_mode IN ('POSTER', 'WORKER')),
    is_admin          boolean     NOT NULL DEFAULT false,
    trust_tier        smallint    NOT NULL DEFAULT 1
                      CONSTRAINT users_trust_tier_range_hx301 CHECK (trust_tier BETWEEN 1 AND 4),
    -- kept equal to the XP ledger's sum by the ledger's trigger (migration 0006)
    xp_total          bigint      NOT NULL DEFAULT 0 CONSTRAINT users_xp_total_non_negative CHECK (xp_total >= 0),
    level             smallint    NOT NULL DEFAULT 1 CONSTRAINT users_level_range CHECK (level BETWEEN 1 AND 10),
    -- consecutive days with a completed task, for the XP streak multiplier
    streak_days       integer     NOT NULL DEFAULT 0 CONSTRAINT users_streak_non_negative CHECK (streak_days >= 0),
    last_active_on    date,
    location_state    char(2)     CONSTRAINT users_location_state_hx301 CHECK (location_state ~ '^[A-Z]{2}$'),
    avatar_upload_id  uuid,       -- foreign key added with uploads (0003)
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_phone_verified_needs_phone CHECK (phone_verified_at IS NULL OR phone IS NOT NULL)
);
CREATE UNIQUE INDEX users_email_unique_hx303 ON users (email);
COMMENT ON INDEX users_email_unique_hx303 IS 'Sign-in looks users up by email; one account per email (HX303 on a duplicate sign-up).';

-- xp_total and level belong to the XP ledger: only its trigger (one level deeper) may move them.
CREATE FUNCTION users_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.xp_total, NEW.level) IS DISTINCT FROM (OLD.xp_total, OLD.level)
       AND pg_trigger_depth() < 2 THEN
        PERFORM hx_raise('HX102', 'xp_total and level are kept by the XP ledger; insert an xp_ledger entry');
    END IF;
    IF NEW.id <> OLD.id OR NEW.created_at <> OLD.created_at THEN
        PERFORM hx_raise('HX003', 'a user''s id and creation time never change');
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END $$;
CREATE TRIGGER users_guard BEFORE UPDATE ON users FOR EACH ROW EXECUTE FUNCTION users_guard();

-- Every trust tier a user gets is written to the trust ledger (who, old, new, why, when).
-- The application says who and why with `SET LOCAL hustle.actor_id / hustle.trust_reason`.
CREATE TABLE trust_ledger (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    uuid        NOT NULL REFERENCES users (id),
    old_tier   smallint    CONSTRAINT trust_ledger_old_tier_range CHECK (old_tier BETWEEN 1 AND 4),
    new_tier   smallint    NOT NULL CONSTRAINT trust_ledger_new_tier_range CHECK (new_tier BETWEEN 1 AND 4),
    reason     text        NOT NULL,
    actor_id   uuid        REFERENCES users (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT trust_ledger_is_a_change CHECK (old_tier IS DISTINCT FROM new_tier)
);
CREATE INDEX trust_ledger_user_idx ON trust_ledger (user_id, created_at DESC);
COMMENT ON INDEX trust_ledger_user_idx IS 'A user''s trust history, newest first.';

CREATE FUNCTION users_record_trust_tier() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.trust_tier IS DISTINCT FROM OLD.trust_tier THEN
        INSERT INTO trust_ledger (user_id, old_tier, new_tier, reason, actor_id)
        VALUES (NEW.id,
                CASE WHEN TG_OP = 'UPDATE' THEN OLD.trust_tier END,
                NEW.trust_tier,
                COALESCE(NULLIF(current_setting('hustle.trust_reason', true), ''),
                         CASE WHEN TG_OP = 'INSERT' THEN 'account created' ELSE 'unspecified' END),
                NULLIF(current_setting('hustle.actor_id', true), '')::uuid);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER users_record_trust_tier AFTER INSERT OR UPDATE OF trust_tier ON users
    FOR EACH ROW EXECUTE FUNCTION users_record_trust_tier();

-- Only the users trigger writes trust entries: a hand-made entry would be a tier change that
-- never happened.
CREATE FUNCTION trust_ledger_insert_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF pg_trigger_depth() < 2 THEN
        PERFORM hx_raise('HX102', 'trust_ledger entries are written by the database when a trust tier changes');
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER trust_ledger_insert_guard BEFORE INSERT ON trust_ledger
    FOR EACH ROW EXECUTE FUNCTION trust_ledger_insert_guard();
CREATE TRIGGER trust_ledger_append_only BEFORE UPDATE OR DELETE ON trust_ledger
    FOR EACH ROW EXECUTE FUNCTION reject_ledger_change();
CREATE TRIGGER trust_ledger_no_truncate BEFORE TRUNCATE ON trust_ledger
    FOR EACH STATEMENT EXECUTE FUNCTION reject_ledger_change();

-- Sessions: opaque bearer tokens of which only the SHA-256 is stored.
CREATE TABLE sessions (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id      uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash   bytea       NOT NULL CONSTRAINT sessions_token_hash_sha256 CHECK (octet_length(token_hash) = 32),
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    last_seen_at timestamptz,
    revoked_at   timestamptz,
    user_agent   text        CONSTRAINT sessions_user_agent_length CHECK (char_length(user_agent) <= 512),
    ip           inet,
    CONSTRAINT sessions_expire_after_creation CHECK (expires_at > created_at)
);
CREATE UNIQUE INDEX sessions_token_hash_key ON sessions (token_hash);
COMMENT ON INDEX sessions_token_hash_key IS 'The auth interceptor''s lookup of a bearer token (by its hash).';
CREATE INDEX sessions_user_active_idx ON sessions (user_id) WHERE revoked_at IS NULL;
COMMENT ON INDEX sessions_user_active_idx IS 'ListSessions, and revoking all of a user''s sessions on password reset.';

-- A revoked session stays revoked; a session never changes hands.
CREATE FUNCTION sessions_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.revoked_at IS NOT NULL AND (NEW.revoked_at IS DISTINCT FROM OLD.revoked_at
                                       OR NEW.token_hash <> OLD.token_hash
                                       OR NEW.expires_at <> OLD.expires_at) THEN
        PERFORM hx_raise('HX003', 'a revoked session cannot be changed');
    END IF;
    IF NEW.user_id <> OLD.user_id OR NEW.created_at <> OLD.created_at THEN
        PERFORM hx_raise('HX003', 'a session''s user and creation time never change');
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER sessions_guard BEFORE UPDATE ON sessions FOR EACH ROW EXECUTE FUNCTION sessions_guard();

-- One-time codes: email verification links (24 h), password reset links (1 h), phone OTPs
-- (10 min); stored hashed; at most 5 attempts; single use.
CREATE TABLE one_time_codes (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    text        NOT NULL CONSTRAINT one_time_codes_purpose
                           CHECK (purpose IN ('EMAIL_VERIFICATION', 'PASSWORD_RESET', 'PHONE_VERIFICATION')),
    code_hash  bytea       NOT NULL CONSTRAINT one_time_codes_hash_sha256 CHECK (octet_length(code_hash) = 32),
    -- what is being verified: the email address or the phone number
    target     text        NOT NULL CONSTRAINT one_time_codes_target_length CHECK (char_length(target) BETWEEN 1 AND 254),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    attempts   smallint    NOT NULL DEFAULT 0
                           CONSTRAINT one_time_codes_attempts_hx404 CHECK (attempts BETWEEN 0 AND 5),
    used_at    timestamptz,
    CONSTRAINT one_time_codes_lifetime CHECK (
        expires_at > created_at
        AND expires_at <= created_at + CASE purpose
                                           WHEN 'PHONE_VERIFICATION' THEN interval '10 minutes'
                                           WHEN 'PASSWORD_RESET' THEN interval '1 hour'
                                           ELSE interval '24 hours'
                                       END)
);
CREATE INDEX one_time_codes_user_live_idx ON one_time_codes (user_id, purpose, created_at DESC)
    WHERE used_at IS NULL;
COMMENT ON INDEX one_time_codes_user_live_idx IS 'The newest live code of a purpose for a user (OTP check, resend).';
CREATE UNIQUE INDEX one_time_codes_link_hash_key ON one_time_codes (code_hash)
    WHERE purpose <> 'PHONE_VERIFICATION';
COMMENT ON INDEX one_time_codes_link_hash_key IS 'Link tokens are looked up by their hash (random 256-bit tokens: unique). OTPs are 6 digits and are looked up by user instead, so they are left out.';

CREATE FUNCTION one_time_codes_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.used_at IS NOT NULL THEN
        PERFORM hx_raise('HX403', 'this code was already used');
    END IF;
    IF (NEW.user_id, NEW.purpose, NEW.code_hash, NEW.target, NEW.created_at)
       IS DISTINCT FROM (OLD.user_id, OLD.purpose, OLD.code_hash, OLD.target, OLD.created_at)
       OR NEW.expires_at > OLD.expires_at THEN
        PERFORM hx_raise('HX003', 'a one-time code cannot be changed, only tried, used or retired early');
    END IF;
    IF NEW.attempts < OLD.attempts THEN
        PERFORM hx_raise('HX003', 'attempts only count up');
    END IF;
    IF NEW.used_at IS NOT NULL THEN
        IF OLD.attempts >= 5 THEN
            PERFORM hx_raise('HX404', 'too many attempts: ask for a new code');
        END IF;
        IF OLD.expires_at <= now() THEN
            PERFORM hx_raise('HX403', 'this code has expired');
        END IF;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER one_time_codes_guard BEFORE UPDATE ON one_time_codes
    FOR EACH ROW EXECUTE FUNCTION one_time_codes_guard();
