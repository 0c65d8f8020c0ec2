-- depends: 0003_uploads
-- Verification records (documents admins review) and the capability profile derived from them.

CREATE TABLE verification_records (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id          uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind             text        NOT NULL CONSTRAINT verification_kind_hx301
                     CHECK (kind IN ('TRADE_LICENSE', 'INSURANCE', 'BACKGROUND_CHECK', 'ID')),
    -- the trade a licence is for, e.g. 'electrician' (only for TRADE_LICENSE)
    trade            text        CONSTRAINT verification_trade_format_hx301 CHECK (trade ~ '^[a-z][a-z_]{1,39}$'),
    state            text        NOT NULL DEFAULT 'PENDING'
                     CONSTRAINT verification_state CHECK (state IN ('PENDING', 'APPROVED', 'REJECTED', 'EXPIRED')),
    -- when the credential stops being valid; NULL: it does not expire
    expires_at       timestamptz,
    submitted_at     timestamptz NOT NULL DEFAULT now(),
    reviewed_at      timestamptz,
    reviewed_by      uuid        REFERENCES users (id),
    rejection_reason text,
    expired_at       timestamptz,
    CONSTRAINT verification_trade_iff_license_hx301 CHECK ((kind = 'TRADE_LICENSE') = (trade IS NOT NULL)),
    CONSTRAINT verification_reviewed CHECK (state = 'PENDING' OR (reviewed_at IS NOT NULL AND reviewed_by IS NOT NULL)),
    CONSTRAINT verification_rejection_reason_hx301 CHECK (state <> 'REJECTED' OR COALESCE(char_length(btrim(rejection_reason)), 0) > 0),
    CONSTRAINT verification_expiry_after_submission CHECK (expires_at IS NULL OR expires_at > submitted_at)
);
CREATE INDEX verification_records_user_idx ON verification_records (user_id, submitted_at DESC);
COMMENT ON INDEX verification_records_user_idx IS 'ListMyVerifications, and the derivation of one user''s capability profile.';
CREATE INDEX verification_records_pending_idx ON verification_records (submitted_at) WHERE state = 'PENDING';
COMMENT ON INDEX verification_records_pending_idx IS 'The admins'' review queue, oldest first.';
CREATE INDEX verification_records_expiry_idx ON verification_records (expires_at) WHERE state = 'APPROVED';
COMMENT ON INDEX verification_records_expiry_idx IS 'The daily expiry job: approved records by expiry.';

-- The documents of a record: the user's own READY VERIFICATION_DOC uploads, 1 to 10 of them.
CREATE TABLE verification_documents (
    verification_id uuid     NOT NULL REFERENCES verification_records (id) ON DELETE CASCADE,
    position        smallint NOT NULL CONSTRAINT verification_documents_position_hx301 CHECK (position BETWEEN 1 AND 10),
    upload_id       uuid     NOT NULL REFERENCES uploads (id),
    PRIMARY KEY (verification_id, position),
    CONSTRAINT verification_documents_upload_once_hx303 UNIQUE (upload_id)
);

-- PENDING → APPROVED | REJECTED (an admin reviews); APPROVED → EXPIRED (its expiry passed).
CREATE FUNCTION verification_transition_allowed(from_state text, to_state text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (from_state, to_state) IN (('PENDING', 'APPROVED'), ('PENDING', 'REJECTED'), ('APPROVED', 'EXPIRED'))
$$;

CREATE FUNCTION verification_records_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.state <> 'PENDING' THEN
            PERFORM hx_raise('HX003', 'a verification starts PENDING');
        END IF;
        RETURN NEW;
    END IF;
    IF OLD.state IN ('REJECTED', 'EXPIRED') AND ROW(NEW.*) IS DISTINCT FROM ROW(OLD.*) THEN
        PERFORM hx_raise('HX003', format('verification %s is %s: it cannot change', OLD.id, OLD.state));
    END IF;
    IF (NEW.user_id, NEW.kind, NEW.trade, NEW.expires_at, NEW.submitted_at)
       IS DISTINCT FROM (OLD.user_id, OLD.kind, OLD.trade, OLD.expires_at, OLD.submitted_at) THEN
        PERFORM hx_raise('HX003', 'a submitted verification cannot be edited; submit a new one');
    END IF;
    IF NEW.state <> OLD.state THEN
        IF NOT verification_transition_allowed(OLD.state, NEW.state) THEN
            PERFORM hx_raise('HX003', format('illegal verification transition %s -> %s', OLD.state, NEW.state));
        END IF;
        IF NEW.state IN ('APPROVED', 'REJECTED') THEN
            IF NOT EXISTS (SELECT 1 FROM users WHERE id = NEW.reviewed_by AND is_admin) THEN
                PERFORM hx_raise('HX202', 'only an admin reviews verifications');
            END IF;
            IF NEW.reviewed_by = NEW.user_id THEN
                PERFORM hx_raise('HX202', 'nobody reviews their own verification');
            END IF;
            NEW.reviewed_at := now();
        END IF;
        IF NEW.state = 'APPROVED' AND NEW.expires_at <= now() THEN
            PERFORM hx_raise('HX003', 'this credential has already expired');
        END IF;
        IF NEW.state = 'EXPIRED' THEN
            IF NEW.expires_at IS NULL OR NEW.expires_at > now() THEN
                PERFORM hx_raise('HX003', 'this credential has not expired yet');
            END IF;
            NEW.expired_at := now();
        END IF;
    ELSIF (NEW.reviewed_at, NEW.reviewed_by, NEW.rejection_reason, NEW.expired_at)
          IS DISTINCT FROM (OLD.reviewed_at, OLD.reviewed_by, OLD.rejection_reason, OLD.expired_at) THEN
        PERFORM hx_raise('HX003', 'a review is recorded only with its state change');
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER verification_records_guard BEFORE INSERT OR UPDATE ON verification_records
    FOR EACH ROW EXECUTE FUNCTION verification_records_guard();
CREATE TRIGGER verification_records_no_delete BEFORE DELETE ON verification_records
    FOR EACH ROW WHEN (pg_trigger_depth() < 1) EXECUTE FUNCTION reject_ledger_change();

CREATE FUNCTION verification_documents_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    record verification_records%ROWTYPE;
BEGIN
    IF TG_OP <> 'INSERT' THEN
        PERFORM hx_raise('HX003', 'the documents of a verification are fixed once submitted');
    END IF;
    SELECT * INTO record FROM verification_records WHERE id = NEW.verification_id;
    IF record.state <> 'PENDING' THEN
        PERFORM hx_raise('HX003', 'documents are added only to a PENDING verification');
    END IF;
    PERFORM require_ready_upload(NEW.upload_id, record.user_id, 'VERIFICATION_DOC');
    RETURN NEW;
END $$;
CREATE TRIGGER verification_documents_guard BEFORE INSERT OR UPDATE ON verification_documents
    FOR EACH ROW EXECUTE FUNCTION verification_documents_guard();
CREATE TRIGGER verification_documents_no_delete BEFORE DELETE ON verification_documents
    FOR EACH ROW WHEN (pg_trigger_depth() < 1) EXECUTE FUNCTION verification_documents_guard();

-- A verification has at least one document once its transaction commits.
CREATE FUNCTION verification_has_documents() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM verification_documents WHERE verification_id = NEW.id)
       AND EXISTS (SELECT 1 FROM verification_records WHERE id = NEW.id) THEN
        PERFORM hx_raise('HX301', format('verification %s has no documents', NEW.id));
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER verification_has_documents AFTER INSERT ON verification_records
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION verification_has_documents();

-- Every state change of a verification recomputes its user's capability profile, through the
-- outbox, in the same transaction: the recompute can be delayed but never forgotten.
CREATE FUNCTION verification_records_enqueue_recompute() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.state <> OLD.state THEN
        INSERT INTO outbox (job, payload)
        VALUES ('capability.recompute', jsonb_build_object('user_id', NEW.user_id, 'verification_id', NEW.id,
                                                           'state', NEW.state));
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER verification_records_enqueue_recompute AFTER INSERT OR UPDATE OF state ON verification_records
    FOR EACH ROW EXECUTE FUNCTION verification_records_enqueue_recompute();

-- The capability profile: derived from the user row and their verification records by
-- recompute_capability(), and by nothing else. Credentials carry their expiry, so that the
-- eligibility predicate compares it with now() and an expired credential stops counting at once.
CREATE TABLE capability_profiles (
    user_id                      uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    location_state               char(2),
    trust_tier                   smallint    NOT NULL CONSTRAINT capability_trust_tier_range CHECK (trust_tier BETWEEN 1 AND 4),
    -- verified trades: {"electrician": "<valid until, ISO 8601 or 'infinity'>", ...}
    trades                       jsonb       NOT NULL DEFAULT '{}'::jsonb
                                 CONSTRAINT capability_trades_object CHECK (jsonb_typeof(trades) = 'object'),
    insurance_valid_until        timestamptz,
    background_check_valid_until timestamptz,
    id_verified                  boolean     NOT NULL DEFAULT false,
    -- bumped whenever the derived content changes (feed caches are keyed by it)
    version                      bigint      NOT NULL DEFAULT 1 CONSTRAINT capability_version_positive CHECK (version >= 1),
    recomputed_at                timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION capability_profiles_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- Cascading deletes from users run one trigger level deeper and are fine.
    IF current_setting('hustle.capability_recompute', true) IS DISTINCT FROM 'on'
       AND NOT (TG_OP = 'DELETE' AND pg_trigger_depth() > 1) THEN
        PERFORM hx_raise('HX003', 'capability profiles are derived: call recompute_capability(user_id)');
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END $$;
CREATE TRIGGER capability_profiles_guard BEFORE INSERT OR UPDATE OR DELETE ON capability_profiles
    FOR EACH ROW EXECUTE FUNCTION capability_profiles_guard();

-- Derive a user's capability profile (deterministic in the user row and their records; the
-- version moves only when the content does). Returns the profile.
CREATE FUNCTION recompute_capability(target uuid) RETURNS capability_profiles
LANGUAGE plpgsql AS $$
DECLARE
    derived capability_profiles%ROWTYPE;
    result  capability_profiles%ROWTYPE;
BEGIN
    SELECT u.id,
           u.location_state,
           u.trust_tier,
           COALESCE((SELECT jsonb_object_agg(t.trade, t.valid_until ORDER BY t.trade)
                       FROM (SELECT v.trade, max(COALESCE(v.expires_at, 'infinity')) AS valid_until
                               FROM verification_records v
                              WHERE v.user_id = u.id AND v.kind = 'TRADE_LICENSE' AND v.state = 'APPROVED'
                              GROUP BY v.trade) t), '{}'::jsonb),
           (SELECT max(COALESCE(v.expires_at, 'infinity')) FROM verification_records v
             WHERE v.user_id = u.id AND v.kind = 'INSURANCE' AND v.state = 'APPROVED'),
           (SELECT max(COALESCE(v.expires_at, 'infinity')) FROM verification_records v
             WHERE v.user_id = u.id AND v.kind = 'BACKGROUND_CHECK' AND v.state = 'APPROVED'),
           EXISTS (SELECT 1 FROM verification_records v
                    WHERE v.user_id = u.id AND v.kind = 'ID' AND v.state = 'APPROVED'
                      AND (v.expires_at IS NULL OR v.expires_at > now()))
      INTO derived.user_id, derived.location_state, derived.trust_tier, derived.trades,
           derived.insurance_valid_until, derived.background_check_valid_until, derived.id_verified
      FROM users u
     WHERE u.id = target
       FOR SHARE OF u;
    IF derived.user_id IS NULL THEN
        PERFORM hx_raise('HX302', format('user %s does not exist', target));
    END IF;

    PERFORM set_config('hustle.capability_recompute', 'on', true);
    INSERT INTO capability_profiles AS cp
           (user_id, location_state, trust_tier, trades, insurance_valid_until,
            background_check_valid_until, id_verified, version, recomputed_at)
    VALUES (derived.user_id, derived.location_state, derived.trust_tier, derived.trades,
            derived.insurance_valid_until, derived.background_check_valid_until, derived.id_verified, 1, now())
    ON CONFLICT (user_id) DO UPDATE
       SET location_state = EXCLUDED.location_state,
           trust_tier = EXCLUDED.trust_tier,
           trades = EXCLUDED.trades,
           insurance_valid_until = EXCLUDED.insurance_valid_until,
           background_check_valid_until = EXCLUDED.background_check_valid_until,
           id_verified = EXCLUDED.id_verified,
           version = cp.version + 1,
           recomputed_at = now()
     WHERE (cp.location_state, cp.trust_tier, cp.trades, cp.insurance_valid_until,
            cp.background_check_valid_until, cp.id_verified)
           IS DISTINCT FROM
           (EXCLUDED.location_state, EXCLUDED.trust_tier, EXCLUDED.trades, EXCLUDED.insurance_valid_until,
            EXCLUDED.background_check_valid_until, EXCLUDED.id_verified)
    RETURNING * INTO result;
    PERFORM set_config('hustle.capability_recompute', 'off', true);
    IF result.user_id IS NULL THEN  -- nothing changed
        SELECT * INTO result FROM capability_profiles WHERE user_id = target;
    END IF;
    RETURN result;
END $$;
