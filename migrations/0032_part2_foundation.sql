-- depends: 0031_one_statement_mutations
-- Part 2 (DOMAIN.md "Part 2"), what its features share: the new notification kinds, the
-- append-only admin log (INV-16) and an account's standing (active, suspended, banned), which
-- INV-17's rules (eligibility, messaging, sign-in) read through account_active().

ALTER TABLE notifications DROP CONSTRAINT notifications_kind;
ALTER TABLE notifications ADD CONSTRAINT notifications_kind CHECK (kind IN (
    'TASK_ACCEPTED', 'TASK_CANCELLED', 'TASK_EXPIRED', 'PROOF_SUBMITTED', 'PROOF_ACCEPTED',
    'PROOF_REJECTED', 'DISPUTE_OPENED', 'DISPUTE_RESOLVED', 'ESCROW_FUNDED', 'ESCROW_RELEASED',
    'ESCROW_REFUNDED', 'XP_EARNED', 'LEVEL_UP', 'TRUST_TIER_CHANGED', 'VERIFICATION_APPROVED',
    'VERIFICATION_REJECTED', 'VERIFICATION_EXPIRED',
    'NEW_MESSAGE', 'RATING_REQUESTED', 'RATINGS_REVEALED', 'URGENT_TASK_NEARBY',
    'ACCOUNT_SUSPENDED', 'ACCOUNT_REINSTATED'));

-- An account's standing. SUSPENDED is reversible, BANNED is final (a trigger of the admin
-- migration keeps it so); the time says since when.
ALTER TABLE users
    ADD COLUMN account_status text NOT NULL DEFAULT 'ACTIVE'
        CONSTRAINT users_account_status_hx301 CHECK (account_status IN ('ACTIVE', 'SUSPENDED', 'BANNED')),
    ADD COLUMN account_status_at timestamptz;

CREATE FUNCTION account_active(user_id uuid) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT account_status = 'ACTIVE' FROM users WHERE id = user_id
$$;
COMMENT ON FUNCTION account_active(uuid) IS 'INV-17: only an ACTIVE account is eligible, messages or signs in.';

-- Every admin mutation and sensitive read, written in the transaction that does it. The actor
-- is NULL for the command line (`python -m server admin grant`), with actor_label 'cli'.
CREATE TABLE admin_actions (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    actor_id    uuid        REFERENCES users (id),
    actor_label text        NOT NULL DEFAULT 'user'
                CONSTRAINT admin_actions_actor_label CHECK (actor_label IN ('user', 'cli', 'system')),
    action      text        NOT NULL CONSTRAINT admin_actions_action_format CHECK (action ~ '^[a-z][a-z_.]{2,63}$'),
    target_kind text        NOT NULL CONSTRAINT admin_actions_target_kind CHECK (target_kind ~ '^[a-z_]{2,32}$'),
    target_id   text        NOT NULL CONSTRAINT admin_actions_target_id_length CHECK (char_length(target_id) BETWEEN 1 AND 100),
    reason      text        NOT NULL CONSTRAINT admin_actions_reason_hx301 CHECK (char_length(btrim(reason)) BETWEEN 1 AND 1000),
    details     jsonb       NOT NULL DEFAULT '{}'::jsonb CONSTRAINT admin_actions_details_object CHECK (jsonb_typeof(details) = 'object'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT admin_actions_actor_known CHECK ((actor_label = 'user') = (actor_id IS NOT NULL))
);
CREATE INDEX admin_actions_target_idx ON admin_actions (target_kind, target_id, created_at DESC);
COMMENT ON INDEX admin_actions_target_idx IS 'What was done to one user, task or dispute, newest first.';
CREATE INDEX admin_actions_actor_idx ON admin_actions (actor_id, created_at DESC) WHERE actor_id IS NOT NULL;
COMMENT ON INDEX admin_actions_actor_idx IS 'What one admin did, newest first.';

-- INV-16: the admin log is append-only (HX102), TRUNCATE included.
CREATE TRIGGER admin_actions_append_only BEFORE UPDATE OR DELETE ON admin_actions
    FOR EACH ROW EXECUTE FUNCTION reject_ledger_change();
CREATE TRIGGER admin_actions_no_truncate BEFORE TRUNCATE ON admin_actions
    FOR EACH STATEMENT EXECUTE FUNCTION reject_ledger_change();
