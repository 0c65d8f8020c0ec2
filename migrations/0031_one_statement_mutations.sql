-- depends: 0030_card_versions
-- The two busiest mutations as one statement each: posting a task (the task, its escrow, its
-- card) and accepting one (the race-free accept, the poster's notification, the card). Each
-- was a transaction of five round trips (BEGIN, three statements, COMMIT); a function runs the
-- same statements in order, each seeing the last, atomically, in one. The rules are unchanged:
-- the tables' triggers check every row as before. The wording of the notification is the
-- caller's (a format() template and a body).

CREATE FUNCTION post_task(
    poster uuid, title text, description text, category text, price_cents bigint, currency text,
    address text, location_state text, latitude float8, longitude float8, urgent boolean,
    deadline timestamptz, required_trade text, required_trust_tier smallint,
    insurance_required boolean, background_check_required boolean
) RETURNS SETOF task_cards
LANGUAGE plpgsql AS $$
DECLARE
    posted uuid;
BEGIN
    INSERT INTO tasks (poster_id, title, description, category, price_cents, currency, address,
                       location_state, location, urgent, deadline, required_trade,
                       required_trust_tier, insurance_required, background_check_required)
    VALUES (poster, title, description, category, price_cents, currency, address, location_state,
            ST_SetSRID(ST_MakePoint(longitude, latitude), 4326)::geography, urgent, deadline,
            required_trade, required_trust_tier, insurance_required, background_check_required)
    RETURNING id INTO posted;
    INSERT INTO escrows (task_id, amount_cents, currency)
    SELECT t.id, t.price_cents, t.currency FROM tasks t WHERE t.id = posted;
    RETURN QUERY SELECT * FROM task_cards c WHERE c.id = posted;
END $$;

-- Take the task if `worker` may (is_eligible, under the row lock: among concurrent accepts one
-- wins and the others re-check and match nothing); tell the poster. No row: not taken (the
-- caller asks why_not_accepted).
CREATE FUNCTION accept_task(task uuid, worker uuid, note_title text, note_body text)
RETURNS SETOF task_cards
LANGUAGE plpgsql AS $$
DECLARE
    taken tasks%ROWTYPE;
BEGIN
    UPDATE tasks t SET state = 'ACCEPTED', worker_id = worker
      FROM capability_profiles p
     WHERE t.id = task AND p.user_id = worker AND is_eligible(t, p)
    RETURNING t.* INTO taken;
    IF taken.id IS NULL THEN
        RETURN;
    END IF;
    INSERT INTO notifications (user_id, kind, title, body, task_id)
    VALUES (taken.poster_id, 'TASK_ACCEPTED', format(note_title, taken.title), note_body, taken.id);
    RETURN QUERY SELECT * FROM task_cards c WHERE c.id = taken.id;
END $$;
