DROP INDEX IF EXISTS admin_actions_newest_idx;
DROP INDEX IF EXISTS xp_ledger_user_keyset_idx;
DROP INDEX IF EXISTS trust_ledger_user_keyset_idx;
DROP INDEX IF EXISTS users_not_active_idx;
DROP INDEX IF EXISTS users_admins_idx;
DROP TRIGGER IF EXISTS users_keep_an_admin ON users;
DROP FUNCTION IF EXISTS users_keep_an_admin();

-- The predicate and its reasons as 0005 made them.
CREATE OR REPLACE FUNCTION is_eligible(t tasks, p capability_profiles) RETURNS boolean
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

CREATE OR REPLACE FUNCTION ineligibility_reason(t tasks, p capability_profiles) RETURNS text
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
ALTER FUNCTION account_active(uuid) PARALLEL UNSAFE;

DROP TRIGGER IF EXISTS sessions_account_active ON sessions;
DROP FUNCTION IF EXISTS sessions_account_active();
DROP TRIGGER IF EXISTS tasks_account_active_on_accept ON tasks;
DROP TRIGGER IF EXISTS tasks_account_active_on_post ON tasks;
DROP FUNCTION IF EXISTS tasks_account_active();
DROP FUNCTION IF EXISTS require_active_account(uuid);
DROP TRIGGER IF EXISTS users_account_status_guard ON users;
DROP FUNCTION IF EXISTS users_account_status_guard();
