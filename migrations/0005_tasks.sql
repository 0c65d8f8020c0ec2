-- depends: 0004_verification
-- Tasks, their escrows, proofs and disputes; the state machines that move them; and the one
-- eligibility predicate that the feed, task detail and accept all use.

CREATE TABLE tasks (
    id                        uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    poster_id                 uuid        NOT NULL REFERENCES users (id),
    -- NULL until accepted; then the one worker the task ever has
    worker_id                 uuid        REFERENCES users (id),
    title                     text        NOT NULL
                              CONSTRAINT tasks_title_length_hx301 CHECK (char_length(btrim(title)) BETWEEN 1 AND 255),
    description               text        NOT NULL DEFAULT ''
                              CONSTRAINT tasks_description_length_hx301 CHECK (char_length(description) <= 5000),
    category                  text        NOT NULL
                              CONSTRAINT tasks_category_format_hx301 CHECK (category ~ '^[A-Z][A-Z_]{1,39}$'),
    price_cents               bigint      NOT NULL CONSTRAINT tasks_price_minimum_hx301 CHECK (price_cents >= 500),
    currency                  char(3)     NOT NULL DEFAULT 'USD'
                              CONSTRAINT tasks_currency_format_hx301 CHECK (currency ~ '^[A-Z]{3}$'),
    address                   text        NOT NULL
                              CONSTRAINT tasks_address_length_hx301 CHECK (char_length(btrim(address)) BETWEEN 1 AND 500),
    location_state            char(2)     NOT NULL
                              CONSTRAINT tasks_location_state_format_hx301 CHECK (location_state ~ '^[A-Z]{2}$'),
    location                  geography(Point, 4326) NOT NULL,
    urgent                    boolean     NOT NULL DEFAULT false,
    deadline                  timestamptz NOT NULL,
    -- what a worker must have (fixed once posted)
    required_trade            text        CONSTRAINT tasks_required_trade_format_hx301
                                          CHECK (required_trade ~ '^[a-z][a-z_]{1,39}$'),
    required_trust_tier       smallint    NOT NULL DEFAULT 1
                              CONSTRAINT tasks_required_trust_tier_range_hx301 CHECK (required_trust_tier BETWEEN 1 AND 4),
    insurance_required        boolean     NOT NULL DEFAULT false,
    background_check_required boolean     NOT NULL DEFAULT false,
    -- INV-3's "when the task requires proof": false lets the worker mark it done without photos
    requires_proof            boolean     NOT NULL DEFAULT true,
    state                     text        NOT NULL DEFAULT 'OPEN'
                              CONSTRAINT tasks_state CHECK (state IN ('OPEN', 'ACCEPTED', 'PROOF_SUBMITTED', 'DISPUTED',
                                                                       'COMPLETED', 'CANCELLED', 'EXPIRED')),
    cancel_reason             text,
    -- set by the escrow when it is funded (the task then enters feeds)
    funded_at                 timestamptz,
    created_at                timestamptz NOT NULL DEFAULT now(),
    updated_at                timestamptz NOT NULL DEFAULT now(),
    accepted_at               timestamptz,
    proof_submitted_at        timestamptz,
    disputed_at               timestamptz,
    completed_at              timestamptz,
    cancelled_at              timestamptz,
    expired_at                timestamptz,
    -- INV-8: a task's worker is never its poster
    CONSTRAINT tasks_worker_not_poster_hx008 CHECK (worker_id <> poster_id),
    CONSTRAINT tasks_open_has_no_worker CHECK (state <> 'OPEN' OR worker_id IS NULL),
    CONSTRAINT tasks_in_progress_has_worker
        CHECK (state NOT IN ('ACCEPTED', 'PROOF_SUBMITTED', 'DISPUTED', 'COMPLETED') OR worker_id IS NOT NULL),
    CONSTRAINT tasks_deadline_after_creation_hx301 CHECK (deadline > created_at)
);

CREATE INDEX tasks_feed_idx ON tasks (location_state, created_at DESC, id DESC)
    WHERE state = 'OPEN' AND funded_at IS NOT NULL;
COMMENT ON INDEX tasks_feed_idx IS 'NORMAL feed: open, funded tasks of the worker''s state (eligibility requires the same state), newest first (keyset on created_at, id). Partial, so it holds only what a feed can show.';
CREATE INDEX tasks_feed_urgent_idx ON tasks (location_state, created_at DESC, id DESC)
    WHERE state = 'OPEN' AND funded_at IS NOT NULL AND urgent;
COMMENT ON INDEX tasks_feed_urgent_idx IS 'URGENT feed: the same, urgent only; a small index scanned for the last 30 minutes.';
CREATE INDEX tasks_feed_location_idx ON tasks USING gist (location)
    WHERE state = 'OPEN' AND funded_at IS NOT NULL;
COMMENT ON INDEX tasks_feed_location_idx IS 'NEARBY feed: nearest-first (KNN, <->) and ST_DWithin on the geography column of open, funded tasks.';
CREATE INDEX tasks_poster_idx ON tasks (poster_id, created_at DESC, id DESC);
COMMENT ON INDEX tasks_poster_idx IS 'ListMyPostedTasks: a poster''s tasks, newest first.';
CREATE INDEX tasks_worker_idx ON tasks (worker_id, created_at DESC, id DESC) WHERE worker_id IS NOT NULL;
COMMENT ON INDEX tasks_worker_idx IS 'ListMyAcceptedTasks: a worker''s tasks, newest first.';
CREATE INDEX tasks_open_deadline_idx ON tasks (deadline) WHERE state = 'OPEN';
COMMENT ON INDEX tasks_open_deadline_idx IS 'task.expire: open tasks by deadline.';

CREATE TABLE escrows (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    task_id           uuid        NOT NULL REFERENCES tasks (id),
    amount_cents      bigint      NOT NULL CONSTRAINT escrows_amount_minimum CHECK (amount_cents >= 500),
    currency          char(3)     NOT NULL,
    state             text        NOT NULL DEFAULT 'PENDING'
                      CONSTRAINT escrows_state CHECK (state IN ('PENDING', 'FUNDED', 'LOCKED_DISPUTE', 'RELEASED',
                                                                'REFUNDED', 'REFUND_PARTIAL')),
    -- the payment processor's reference for the funds (provider-agnostic)
    payment_reference text        CONSTRAINT escrows_payment_reference_length_hx301
                                  CHECK (char_length(btrim(payment_reference)) BETWEEN 1 AND 200),
    released_cents    bigint      NOT NULL DEFAULT 0 CONSTRAINT escrows_released_non_negative CHECK (released_cents >= 0),
    refunded_cents    bigint      NOT NULL DEFAULT 0 CONSTRAINT escrows_refunded_non_negative CHECK (refunded_cents >= 0),
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    funded_at         timestamptz,
    locked_at         timestamptz,
    settled_at        timestamptz,
    CONSTRAINT escrows_funded_has_reference_hx301 CHECK (state = 'PENDING' OR payment_reference IS NOT NULL),
    -- where the money went adds up to the amount
    CONSTRAINT escrows_outcome_adds_up CHECK (
        CASE state
            WHEN 'RELEASED' THEN released_cents = amount_cents AND refunded_cents = 0
            WHEN 'REFUNDED' THEN refunded_cents = amount_cents AND released_cents = 0
            WHEN 'REFUND_PARTIAL' THEN released_cents > 0 AND refunded_cents > 0
                                       AND released_cents + refunded_cents = amount_cents
            ELSE released_cents = 0 AND refunded_cents = 0
        END)
);
CREATE UNIQUE INDEX escrows_one_per_task_hx303 ON escrows (task_id);
COMMENT ON INDEX escrows_one_per_task_hx303 IS 'One escrow per task, found by its task.';

CREATE TABLE proofs (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    task_id          uuid        NOT NULL REFERENCES tasks (id),
    worker_id        uuid        NOT NULL REFERENCES users (id),
    note             text        NOT NULL DEFAULT ''
                     CONSTRAINT proofs_note_length_hx301 CHECK (char_length(note) <= 2000),
    state            text        NOT NULL DEFAULT 'SUBMITTED'
                     CONSTRAINT proofs_state CHECK (state IN ('SUBMITTED', 'ACCEPTED', 'REJECTED')),
    rejection_reason text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    reviewed_at      timestamptz,
    CONSTRAINT proofs_rejection_has_reason_hx301
        CHECK (state <> 'REJECTED' OR COALESCE(char_length(btrim(rejection_reason)), 0) > 0)
);
CREATE INDEX proofs_task_idx ON proofs (task_id, created_at DESC);
COMMENT ON INDEX proofs_task_idx IS 'A task''s proofs, newest first.';
CREATE UNIQUE INDEX proofs_one_submitted_per_task_hx003 ON proofs (task_id) WHERE state = 'SUBMITTED';
COMMENT ON INDEX proofs_one_submitted_per_task_hx003 IS 'At most one proof of a task awaits review.';

CREATE TABLE proof_photos (
    proof_id  uuid     NOT NULL REFERENCES proofs (id),
    -- INV-9: at most 5 photos (at least 1 is checked at commit)
    position  smallint NOT NULL CONSTRAINT proof_photos_position_hx007 CHECK (position BETWEEN 1 AND 5),
    upload_id uuid     NOT NULL REFERENCES uploads (id),
    PRIMARY KEY (proof_id, position),
    CONSTRAINT proof_photos_upload_once_hx303 UNIQUE (upload_id)
);

CREATE TABLE disputes (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    task_id             uuid        NOT NULL REFERENCES tasks (id),
    opened_by           uuid        NOT NULL REFERENCES users (id),
    reason              text        NOT NULL
                        CONSTRAINT disputes_reason_length_hx301 CHECK (char_length(btrim(reason)) BETWEEN 1 AND 2000),
    state               text        NOT NULL DEFAULT 'OPEN' CONSTRAINT disputes_state CHECK (state IN ('OPEN', 'RESOLVED')),
    resolution          text        CONSTRAINT disputes_resolution CHECK (resolution IN ('RELEASE', 'REFUND', 'SPLIT')),
    -- for SPLIT: what the worker gets; the poster is refunded the rest
    split_release_cents bigint,
    resolved_by         uuid        REFERENCES users (id),
    resolution_note     text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    resolved_at         timestamptz,
    CONSTRAINT disputes_resolved_is_complete CHECK (
        (state = 'RESOLVED') = (resolution IS NOT NULL AND resolved_by IS NOT NULL AND resolved_at IS NOT NULL)),
    CONSTRAINT disputes_split_amount_hx301 CHECK (
        (COALESCE(resolution, '') = 'SPLIT') = (split_release_cents IS NOT NULL) AND COALESCE(split_release_cents, 1) > 0)
);
CREATE UNIQUE INDEX disputes_one_open_per_task_hx303 ON disputes (task_id) WHERE state = 'OPEN';
COMMENT ON INDEX disputes_one_open_per_task_hx303 IS 'A task has at most one open dispute.';
CREATE INDEX disputes_task_idx ON disputes (task_id, created_at DESC);
COMMENT ON INDEX disputes_task_idx IS 'A task''s disputes, newest first (the resolution that settles it).';
CREATE INDEX disputes_open_idx ON disputes (created_at) WHERE state = 'OPEN';
COMMENT ON INDEX disputes_open_idx IS 'The admins'' queue of open disputes, oldest first.';

-- THE eligibility predicate (DOMAIN.md "Eligibility"), the only definition of who may take a
-- task. A plain SQL expression, so the planner inlines it into the feed queries (no per-row
-- function call, and the partial feed indexes still apply). `p` is the worker's profile.
CREATE FUNCTION is_eligible(t tasks, p capability_profiles) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT t.state = 'OPEN'
       AND t.worker_id IS NULL
       AND t.funded_at IS NOT NULL
       AND p.user_id IS NOT NULL
       AND t.poster_id <> p.user_id
       AND p.location_state = t.location_state
       AND p.trust_tier >= t.required_trust_tier
       AND (t.required_trade IS NULL OR (p.trades ->> t.required_trade)::timestamptz > now())
       AND (NOT t.insurance_required OR p.insurance_valid_until > now())
       AND (NOT t.background_check_required OR p.background_check_valid_until > now())
$$;

-- The same predicate by ids (task detail, accept): false when either does not exist.
CREATE FUNCTION is_eligible(worker uuid, task uuid) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT COALESCE((SELECT is_eligible(t, p)
                       FROM tasks t, capability_profiles p
                      WHERE t.id = task AND p.user_id = worker), false)
$$;

-- Why a worker may not take a task, in words (for error messages); NULL when eligible.
CREATE FUNCTION ineligibility_reason(t tasks, p capability_profiles) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN is_eligible(t, p) THEN NULL
        WHEN p.user_id IS NULL THEN 'no capability profile yet'
        WHEN t.state <> 'OPEN' OR t.worker_id IS NOT NULL THEN 'the task is not open'
        WHEN t.funded_at IS NULL THEN 'the task is not funded'
        WHEN t.poster_id = p.user_id THEN 'this is your own task'
        WHEN p.location_state IS DISTINCT FROM t.location_state THEN 'the task is in another state'
        WHEN p.trust_tier < t.required_trust_tier THEN 'the task needs a higher trust tier'
        WHEN t.required_trade IS NOT NULL
             AND NOT COALESCE((p.trades ->> t.required_trade)::timestamptz > now(), false)
            THEN format('the task needs a verified %s licence', t.required_trade)
        WHEN t.insurance_required THEN 'the task needs valid insurance'
        ELSE 'the task needs a valid background check'
    END
$$;

-- Tasks: OPEN → ACCEPTED | CANCELLED | EXPIRED; ACCEPTED → PROOF_SUBMITTED | CANCELLED;
-- PROOF_SUBMITTED → COMPLETED | ACCEPTED (rejected) | DISPUTED; DISPUTED → COMPLETED | CANCELLED.
CREATE FUNCTION task_transition_allowed(from_state text, to_state text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (from_state, to_state) IN (
        ('OPEN', 'ACCEPTED'), ('OPEN', 'CANCELLED'), ('OPEN', 'EXPIRED'),
        ('ACCEPTED', 'PROOF_SUBMITTED'), ('ACCEPTED', 'CANCELLED'),
        ('PROOF_SUBMITTED', 'COMPLETED'), ('PROOF_SUBMITTED', 'ACCEPTED'), ('PROOF_SUBMITTED', 'DISPUTED'),
        ('DISPUTED', 'COMPLETED'), ('DISPUTED', 'CANCELLED'))
$$;

CREATE FUNCTION task_is_terminal(state text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT state IN ('COMPLETED', 'CANCELLED', 'EXPIRED') $$;

CREATE FUNCTION tasks_insert_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.state <> 'OPEN' OR NEW.worker_id IS NOT NULL OR NEW.funded_at IS NOT NULL
       OR num_nonnulls(NEW.accepted_at, NEW.proof_submitted_at, NEW.disputed_at, NEW.completed_at,
                       NEW.cancelled_at, NEW.expired_at) > 0 THEN
        PERFORM hx_raise('HX003', 'a task starts OPEN, unfunded and without a worker');
    END IF;
    IF NEW.deadline <= now() THEN
        PERFORM hx_raise('HX301', 'the deadline must be in the future');
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER tasks_insert_guard BEFORE INSERT ON tasks FOR EACH ROW EXECUTE FUNCTION tasks_insert_guard();

CREATE FUNCTION tasks_transition_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    profile  capability_profiles%ROWTYPE;
    dispute  disputes%ROWTYPE;
    why      text;
BEGIN
    -- INV-6: a terminal task is frozen.
    IF task_is_terminal(OLD.state) THEN
        IF ROW(NEW.*) IS DISTINCT FROM ROW(OLD.*) THEN
            PERFORM hx_raise('HX001', format('task %s is %s: it cannot change', OLD.id, OLD.state));
        END IF;
        RETURN NEW;
    END IF;

    -- What is fixed once posted: who posted it, its price and its requirements.
    IF (NEW.id, NEW.poster_id, NEW.price_cents, NEW.currency, NEW.required_trade, NEW.required_trust_tier,
        NEW.insurance_required, NEW.background_check_required, NEW.requires_proof, NEW.created_at)
       IS DISTINCT FROM
       (OLD.id, OLD.poster_id, OLD.price_cents, OLD.currency, OLD.required_trade, OLD.required_trust_tier,
        OLD.insurance_required, OLD.background_check_required, OLD.requires_proof, OLD.created_at) THEN
        PERFORM hx_raise('HX003', 'a task''s poster, price and requirements are fixed once posted');
    END IF;
    -- What a poster may edit while the task is OPEN, and only then.
    IF OLD.state <> 'OPEN'
       AND (NEW.title, NEW.description, NEW.category, NEW.address, NEW.location_state, NEW.location::text,
            NEW.urgent, NEW.deadline)
           IS DISTINCT FROM
           (OLD.title, OLD.description, OLD.category, OLD.address, OLD.location_state, OLD.location::text,
            OLD.urgent, OLD.deadline) THEN
        PERFORM hx_raise('HX003', 'a task can be edited only while it is OPEN');
    END IF;
    -- The funding stamp is the escrow's to set, once, while the task is OPEN.
    IF NEW.funded_at IS DISTINCT FROM OLD.funded_at
       AND (OLD.funded_at IS NOT NULL OR OLD.state <> 'OPEN' OR pg_trigger_depth() < 2) THEN
        PERFORM hx_raise('HX003', 'funded_at is set by the escrow when it is funded');
    END IF;
    -- INV-8: at most one worker, ever.
    IF NEW.worker_id IS DISTINCT FROM OLD.worker_id THEN
        IF OLD.worker_id IS NOT NULL THEN
            PERFORM hx_raise('HX203', format('task %s was already taken', OLD.id));
        END IF;
        IF NOT (OLD.state = 'OPEN' AND NEW.state = 'ACCEPTED') THEN
            PERFORM hx_raise('HX003', 'a worker is assigned only by accepting an OPEN task');
        END IF;
    END IF;

    IF NEW.state = OLD.state THEN
        IF (NEW.accepted_at, NEW.proof_submitted_at, NEW.disputed_at, NEW.completed_at, NEW.cancelled_at,
            NEW.expired_at, NEW.cancel_reason)
           IS DISTINCT FROM
           (OLD.accepted_at, OLD.proof_submitted_at, OLD.disputed_at, OLD.completed_at, OLD.cancelled_at,
            OLD.expired_at, OLD.cancel_reason) THEN
            PERFORM hx_raise('HX003', 'transition times are recorded by the transitions themselves');
        END IF;
        NEW.updated_at := now();
        RETURN NEW;
    END IF;

    -- INV-10: only the transitions of the state machine.
    IF NOT task_transition_allowed(OLD.state, NEW.state) THEN
        PERFORM hx_raise('HX003', format('illegal task transition %s -> %s', OLD.state, NEW.state));
    END IF;

    CASE NEW.state
    WHEN 'ACCEPTED' THEN
        IF OLD.state = 'OPEN' THEN
            IF NEW.worker_id IS NULL THEN
                PERFORM hx_raise('HX003', 'accepting a task names its worker');
            END IF;
            IF NEW.worker_id = NEW.poster_id THEN
                PERFORM hx_raise('HX008', 'a poster cannot take their own task');
            END IF;
            IF OLD.funded_at IS NULL THEN
                PERFORM hx_raise('HX204', format('task %s is not funded yet', OLD.id));
            END IF;
            SELECT * INTO profile FROM capability_profiles WHERE user_id = NEW.worker_id;
            why := ineligibility_reason(OLD, profile);
            IF why IS NOT NULL THEN
                PERFORM hx_raise('HX201', 'not eligible: ' || why);
            END IF;
            NEW.accepted_at := now();
        ELSE  -- a rejected proof sends the task back to its worker
            IF EXISTS (SELECT 1 FROM proofs WHERE task_id = NEW.id AND state = 'SUBMITTED') THEN
                PERFORM hx_raise('HX003', 'reject the submitted proof before returning the task to its worker');
            END IF;
        END IF;
    WHEN 'PROOF_SUBMITTED' THEN
        -- (a task that requires no proof is marked done by its worker without one)
        IF NEW.requires_proof
           AND NOT EXISTS (SELECT 1 FROM proofs WHERE task_id = NEW.id AND state = 'SUBMITTED'
                                                  AND worker_id = NEW.worker_id) THEN
            PERFORM hx_raise('HX007', 'submit a proof with 1 to 5 photos first');
        END IF;
        NEW.proof_submitted_at := now();
    WHEN 'DISPUTED' THEN
        IF NOT EXISTS (SELECT 1 FROM disputes WHERE task_id = NEW.id AND state = 'OPEN') THEN
            PERFORM hx_raise('HX003', 'open a dispute before moving the task to DISPUTED');
        END IF;
        NEW.disputed_at := now();
    WHEN 'COMPLETED' THEN
        -- INV-3: completion needs an accepted proof (when the task requires one).
        IF NEW.requires_proof
           AND NOT EXISTS (SELECT 1 FROM proofs WHERE task_id = NEW.id AND state = 'ACCEPTED') THEN
            PERFORM hx_raise('HX006', format('task %s has no accepted proof', NEW.id));
        END IF;
        IF OLD.state = 'DISPUTED' THEN
            SELECT * INTO dispute FROM disputes WHERE task_id = NEW.id ORDER BY created_at DESC LIMIT 1;
            IF dispute.state IS DISTINCT FROM 'RESOLVED' OR dispute.resolution NOT IN ('RELEASE', 'SPLIT') THEN
                PERFORM hx_raise('HX003', 'a disputed task is completed by resolving its dispute (RELEASE or SPLIT)');
            END IF;
        END IF;
        NEW.completed_at := now();
    WHEN 'CANCELLED' THEN
        IF OLD.state = 'DISPUTED' THEN
            SELECT * INTO dispute FROM disputes WHERE task_id = NEW.id ORDER BY created_at DESC LIMIT 1;
            IF dispute.state IS DISTINCT FROM 'RESOLVED' OR dispute.resolution <> 'REFUND' THEN
                PERFORM hx_raise('HX003', 'a disputed task is cancelled by resolving its dispute with REFUND');
            END IF;
        END IF;
        NEW.cancelled_at := now();
    WHEN 'EXPIRED' THEN
        IF OLD.deadline > now() THEN
            PERFORM hx_raise('HX003', format('task %s is not past its deadline', OLD.id));
        END IF;
        NEW.expired_at := now();
    END CASE;
    NEW.updated_at := now();
    RETURN NEW;
END $$;
CREATE TRIGGER tasks_transition_guard BEFORE UPDATE ON tasks FOR EACH ROW EXECUTE FUNCTION tasks_transition_guard();

-- Escrows: PENDING → FUNDED → (LOCKED_DISPUTE) → RELEASED | REFUNDED | REFUND_PARTIAL.
CREATE FUNCTION escrow_transition_allowed(from_state text, to_state text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (from_state, to_state) IN (
        ('PENDING', 'FUNDED'),
        ('FUNDED', 'LOCKED_DISPUTE'), ('FUNDED', 'RELEASED'), ('FUNDED', 'REFUNDED'),
        ('LOCKED_DISPUTE', 'RELEASED'), ('LOCKED_DISPUTE', 'REFUNDED'), ('LOCKED_DISPUTE', 'REFUND_PARTIAL'))
$$;

CREATE FUNCTION escrows_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    task    tasks%ROWTYPE;
    dispute disputes%ROWTYPE;
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT * INTO task FROM tasks WHERE id = NEW.task_id;
        IF NEW.state <> 'PENDING' OR NEW.payment_reference IS NOT NULL THEN
            PERFORM hx_raise('HX003', 'an escrow starts PENDING');
        END IF;
        IF (NEW.amount_cents, NEW.currency) IS DISTINCT FROM (task.price_cents, task.currency) THEN
            PERFORM hx_raise('HX004', 'an escrow holds exactly the task''s price');
        END IF;
        RETURN NEW;
    END IF;

    -- INV-6: a settled escrow is frozen.
    IF OLD.state IN ('RELEASED', 'REFUNDED', 'REFUND_PARTIAL') THEN
        IF ROW(NEW.*) IS DISTINCT FROM ROW(OLD.*) THEN
            PERFORM hx_raise('HX002', format('escrow %s is %s: it cannot change', OLD.id, OLD.state));
        END IF;
        RETURN NEW;
    END IF;
    -- INV-4: the amount never changes (it is the task's price, fixed at posting and funding).
    IF (NEW.amount_cents, NEW.currency) IS DISTINCT FROM (OLD.amount_cents, OLD.currency) THEN
        PERFORM hx_raise('HX004', format('escrow %s: the amount cannot change', OLD.id));
    END IF;
    IF (NEW.id, NEW.task_id, NEW.created_at) IS DISTINCT FROM (OLD.id, OLD.task_id, OLD.created_at) THEN
        PERFORM hx_raise('HX003', 'an escrow always belongs to its task');
    END IF;
    IF NEW.state = OLD.state THEN
        IF (NEW.payment_reference, NEW.funded_at, NEW.locked_at, NEW.settled_at, NEW.released_cents, NEW.refunded_cents)
           IS DISTINCT FROM
           (OLD.payment_reference, OLD.funded_at, OLD.locked_at, OLD.settled_at, OLD.released_cents, OLD.refunded_cents) THEN
            PERFORM hx_raise('HX003', 'an escrow changes only by its transitions');
        END IF;
        RETURN NEW;
    END IF;
    IF NOT escrow_transition_allowed(OLD.state, NEW.state) THEN
        PERFORM hx_raise('HX003', format('illegal escrow transition %s -> %s', OLD.state, NEW.state));
    END IF;

    SELECT * INTO task FROM tasks WHERE id = NEW.task_id;
    SELECT * INTO dispute FROM disputes WHERE task_id = NEW.task_id ORDER BY created_at DESC LIMIT 1;
    CASE NEW.state
    WHEN 'FUNDED' THEN
        IF task.state <> 'OPEN' THEN
            PERFORM hx_raise('HX003', format('task %s is %s: only an OPEN task is funded', task.id, task.state));
        END IF;
        NEW.funded_at := now();
    WHEN 'LOCKED_DISPUTE' THEN
        IF task.state <> 'DISPUTED' THEN
            PERFORM hx_raise('HX003', 'an escrow is locked only for a disputed task');
        END IF;
        NEW.locked_at := now();
    WHEN 'RELEASED' THEN
        -- INV-2: released only for a completed task.
        IF task.state <> 'COMPLETED' THEN
            PERFORM hx_raise('HX005', format('task %s is %s, not COMPLETED', task.id, task.state));
        END IF;
        IF OLD.state = 'LOCKED_DISPUTE' AND dispute.resolution IS DISTINCT FROM 'RELEASE' THEN
            PERFORM hx_raise('HX003', 'a locked escrow is released only by a RELEASE resolution');
        END IF;
        NEW.released_cents := NEW.amount_cents;
        NEW.refunded_cents := 0;
        NEW.settled_at := now();
    WHEN 'REFUNDED' THEN
        IF task.state NOT IN ('CANCELLED', 'EXPIRED') THEN
            PERFORM hx_raise('HX003', format('task %s is %s: only a cancelled or expired task is refunded',
                                             task.id, task.state));
        END IF;
        IF OLD.state = 'LOCKED_DISPUTE' AND dispute.resolution IS DISTINCT FROM 'REFUND' THEN
            PERFORM hx_raise('HX003', 'a locked escrow is refunded only by a REFUND resolution');
        END IF;
        NEW.refunded_cents := NEW.amount_cents;
        NEW.released_cents := 0;
        NEW.settled_at := now();
    WHEN 'REFUND_PARTIAL' THEN
        IF task.state <> 'COMPLETED' OR dispute.resolution IS DISTINCT FROM 'SPLIT' THEN
            PERFORM hx_raise('HX003', 'a split follows a SPLIT resolution of a completed task');
        END IF;
        NEW.released_cents := dispute.split_release_cents;
        NEW.refunded_cents := NEW.amount_cents - dispute.split_release_cents;
        NEW.settled_at := now();
    END CASE;
    NEW.updated_at := now();
    RETURN NEW;
END $$;
CREATE TRIGGER escrows_guard BEFORE INSERT OR UPDATE ON escrows FOR EACH ROW EXECUTE FUNCTION escrows_guard();

-- Funding puts the task into feeds: the escrow stamps it (one trigger level deeper).
CREATE FUNCTION escrows_stamp_task() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE tasks SET funded_at = NEW.funded_at WHERE id = NEW.task_id;
    RETURN NULL;
END $$;
CREATE TRIGGER escrows_stamp_task AFTER UPDATE OF state ON escrows
    FOR EACH ROW WHEN (NEW.state = 'FUNDED' AND OLD.state = 'PENDING') EXECUTE FUNCTION escrows_stamp_task();

CREATE TRIGGER escrows_no_delete BEFORE DELETE ON escrows FOR EACH ROW EXECUTE FUNCTION reject_ledger_change();
CREATE TRIGGER tasks_no_delete BEFORE DELETE ON tasks FOR EACH ROW EXECUTE FUNCTION reject_ledger_change();

-- A task and its escrow always agree (checked at commit, when a transaction has moved both):
-- which escrow states each task state allows.
CREATE FUNCTION task_escrow_agree(task_state text, escrow_state text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE task_state
        WHEN 'OPEN' THEN escrow_state IN ('PENDING', 'FUNDED')
        WHEN 'ACCEPTED' THEN escrow_state = 'FUNDED'
        WHEN 'PROOF_SUBMITTED' THEN escrow_state = 'FUNDED'
        WHEN 'DISPUTED' THEN escrow_state = 'LOCKED_DISPUTE'
        WHEN 'COMPLETED' THEN escrow_state IN ('RELEASED', 'REFUND_PARTIAL')
        WHEN 'CANCELLED' THEN escrow_state IN ('PENDING', 'REFUNDED')
        WHEN 'EXPIRED' THEN escrow_state IN ('PENDING', 'REFUNDED')
        ELSE false
    END
$$;

CREATE FUNCTION check_task_escrow_agreement() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    the_task     uuid;
    task_state   text;
    escrow_state text;
BEGIN
    -- (two statements: NEW has no task_id on tasks, and no branch may name it there)
    IF TG_TABLE_NAME = 'tasks' THEN
        the_task := NEW.id;
    ELSE
        the_task := NEW.task_id;
    END IF;
    SELECT t.state, e.state INTO task_state, escrow_state
      FROM tasks t LEFT JOIN escrows e ON e.task_id = t.id
     WHERE t.id = the_task;
    IF escrow_state IS NULL THEN
        PERFORM hx_raise('HX003', format('task %s has no escrow', the_task));
    END IF;
    IF NOT task_escrow_agree(task_state, escrow_state) THEN
        PERFORM hx_raise('HX003', format('task %s is %s but its escrow is %s', the_task, task_state, escrow_state));
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER tasks_agree_with_escrow AFTER INSERT OR UPDATE OF state ON tasks
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION check_task_escrow_agreement();
CREATE CONSTRAINT TRIGGER escrows_agree_with_task AFTER INSERT OR UPDATE OF state ON escrows
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION check_task_escrow_agreement();

-- Proofs: SUBMITTED → ACCEPTED | REJECTED, by the poster (or an admin resolving a dispute).
CREATE FUNCTION proofs_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    task tasks%ROWTYPE;
BEGIN
    SELECT * INTO task FROM tasks WHERE id = NEW.task_id;
    IF TG_OP = 'INSERT' THEN
        IF NEW.state <> 'SUBMITTED' THEN
            PERFORM hx_raise('HX003', 'a proof starts SUBMITTED');
        END IF;
        IF task.worker_id IS DISTINCT FROM NEW.worker_id THEN
            PERFORM hx_raise('HX202', 'only the task''s worker submits proof');
        END IF;
        IF task.state <> 'ACCEPTED' THEN
            PERFORM hx_raise('HX003', format('task %s is %s: proof is submitted for an ACCEPTED task', task.id, task.state));
        END IF;
        RETURN NEW;
    END IF;
    IF OLD.state <> 'SUBMITTED' AND ROW(NEW.*) IS DISTINCT FROM ROW(OLD.*) THEN
        PERFORM hx_raise('HX003', format('proof %s was already %s', OLD.id, OLD.state));
    END IF;
    IF (NEW.id, NEW.task_id, NEW.worker_id, NEW.note, NEW.created_at)
       IS DISTINCT FROM (OLD.id, OLD.task_id, OLD.worker_id, OLD.note, OLD.created_at) THEN
        PERFORM hx_raise('HX003', 'a submitted proof cannot be edited');
    END IF;
    IF NEW.state <> OLD.state THEN
        IF task.state NOT IN ('PROOF_SUBMITTED', 'DISPUTED') THEN
            PERFORM hx_raise('HX003', format('task %s is %s: its proof is not under review', task.id, task.state));
        END IF;
        NEW.reviewed_at := now();
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER proofs_guard BEFORE INSERT OR UPDATE ON proofs FOR EACH ROW EXECUTE FUNCTION proofs_guard();
CREATE TRIGGER proofs_no_delete BEFORE DELETE ON proofs FOR EACH ROW EXECUTE FUNCTION reject_ledger_change();

CREATE FUNCTION proof_photos_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    proof proofs%ROWTYPE;
BEGIN
    IF TG_OP <> 'INSERT' THEN
        PERFORM hx_raise('HX007', 'the photos of a proof are fixed once submitted');
    END IF;
    SELECT * INTO proof FROM proofs WHERE id = NEW.proof_id;
    IF proof.state <> 'SUBMITTED' THEN
        PERFORM hx_raise('HX003', format('proof %s was already reviewed', proof.id));
    END IF;
    PERFORM require_ready_upload(NEW.upload_id, proof.worker_id, 'PROOF_PHOTO');
    RETURN NEW;
END $$;
CREATE TRIGGER proof_photos_guard BEFORE INSERT OR UPDATE ON proof_photos
    FOR EACH ROW EXECUTE FUNCTION proof_photos_guard();
CREATE TRIGGER proof_photos_no_delete BEFORE DELETE ON proof_photos
    FOR EACH ROW EXECUTE FUNCTION proof_photos_guard();

-- INV-9: a submitted proof has 1 to 5 photos (checked at commit, after its photos are added).
CREATE FUNCTION proof_has_photos() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    photos integer;
BEGIN
    SELECT count(*) INTO photos FROM proof_photos WHERE proof_id = NEW.id;
    IF photos NOT BETWEEN 1 AND 5 THEN
        PERFORM hx_raise('HX007', format('proof %s has %s photos; a proof needs 1 to 5', NEW.id, photos));
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER proofs_have_photos AFTER INSERT ON proofs
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION proof_has_photos();

-- Disputes: opened by the task's poster or worker on a PROOF_SUBMITTED task, resolved by an admin.
CREATE FUNCTION disputes_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    task   tasks%ROWTYPE;
    escrow escrows%ROWTYPE;
BEGIN
    SELECT * INTO task FROM tasks WHERE id = NEW.task_id;
    IF TG_OP = 'INSERT' THEN
        IF NEW.state <> 'OPEN' THEN
            PERFORM hx_raise('HX003', 'a dispute starts OPEN');
        END IF;
        IF NEW.opened_by NOT IN (task.poster_id, task.worker_id) OR task.worker_id IS NULL THEN
            PERFORM hx_raise('HX202', 'only the task''s poster or worker opens a dispute');
        END IF;
        IF task.state <> 'PROOF_SUBMITTED' THEN
            PERFORM hx_raise('HX003', format('task %s is %s: disputes are opened on submitted proof', task.id, task.state));
        END IF;
        RETURN NEW;
    END IF;
    IF OLD.state = 'RESOLVED' AND ROW(NEW.*) IS DISTINCT FROM ROW(OLD.*) THEN
        PERFORM hx_raise('HX003', format('dispute %s is resolved: it cannot change', OLD.id));
    END IF;
    IF (NEW.id, NEW.task_id, NEW.opened_by, NEW.reason, NEW.created_at)
       IS DISTINCT FROM (OLD.id, OLD.task_id, OLD.opened_by, OLD.reason, OLD.created_at) THEN
        PERFORM hx_raise('HX003', 'an open dispute cannot be edited');
    END IF;
    IF NEW.state = 'RESOLVED' AND OLD.state = 'OPEN' THEN
        IF NOT EXISTS (SELECT 1 FROM users WHERE id = NEW.resolved_by AND is_admin) THEN
            PERFORM hx_raise('HX202', 'only an admin resolves disputes');
        END IF;
        IF NEW.resolution = 'SPLIT' THEN
            SELECT * INTO escrow FROM escrows WHERE task_id = NEW.task_id;
            IF NEW.split_release_cents >= escrow.amount_cents THEN
                PERFORM hx_raise('HX301', 'a split releases less than the whole amount');
            END IF;
        END IF;
        NEW.resolved_at := now();
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER disputes_guard BEFORE INSERT OR UPDATE ON disputes FOR EACH ROW EXECUTE FUNCTION disputes_guard();
CREATE TRIGGER disputes_no_delete BEFORE DELETE ON disputes FOR EACH ROW EXECUTE FUNCTION reject_ledger_change();
