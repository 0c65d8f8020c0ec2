-- Undo 0035_ratings: the ratings, their windows and triggers; tier changes without a reason
-- are recorded as 'unspecified' again (0002's function).
CREATE OR REPLACE FUNCTION users_record_trust_tier() RETURNS trigger
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
COMMENT ON FUNCTION users_record_trust_tier() IS NULL;

DROP TRIGGER IF EXISTS users_enqueue_trust ON users;
DROP FUNCTION IF EXISTS users_enqueue_trust();
DROP TRIGGER IF EXISTS verification_records_enqueue_trust ON verification_records;
DROP FUNCTION IF EXISTS verification_records_enqueue_trust();
DROP TRIGGER IF EXISTS tasks_after_close ON tasks;
DROP FUNCTION IF EXISTS tasks_after_close();
DROP TABLE IF EXISTS rating_windows;
DROP TABLE IF EXISTS ratings;
DROP FUNCTION IF EXISTS ratings_no_delete();
DROP FUNCTION IF EXISTS ratings_update_guard();
DROP FUNCTION IF EXISTS ratings_reveal();
DROP FUNCTION IF EXISTS ratings_insert_guard();
DROP FUNCTION IF EXISTS rating_tags_negative(text, text[]);
DROP FUNCTION IF EXISTS rating_tags_valid(text, text[]);
DROP FUNCTION IF EXISTS rating_tag_kind(text, text);
