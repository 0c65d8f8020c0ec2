DROP TABLE IF EXISTS messages;
DROP TABLE IF EXISTS message_settings;
DROP FUNCTION IF EXISTS messages_insert_guard();
DROP FUNCTION IF EXISTS messages_update_guard();
DROP FUNCTION IF EXISTS messages_delete_guard();
DROP FUNCTION IF EXISTS message_purgeable(uuid);
DROP FUNCTION IF EXISTS thread_writable(text);
DROP FUNCTION IF EXISTS message_has_contact(text);
DELETE FROM uploads WHERE purpose = 'MESSAGE_PHOTO';
ALTER TABLE uploads DROP CONSTRAINT IF EXISTS uploads_message_photo_key_hx301;
ALTER TABLE uploads DROP CONSTRAINT uploads_type_and_size_hx301;
ALTER TABLE uploads ADD CONSTRAINT uploads_type_and_size_hx301 CHECK (
    (purpose = 'PROOF_PHOTO' AND declared_size BETWEEN 1 AND 10 * 1024 * 1024
        AND content_type IN ('image/jpeg', 'image/png', 'image/heic', 'image/webp'))
    OR (purpose = 'AVATAR' AND declared_size BETWEEN 1 AND 5 * 1024 * 1024
        AND content_type IN ('image/jpeg', 'image/png', 'image/webp'))
    OR (purpose = 'VERIFICATION_DOC' AND declared_size BETWEEN 1 AND 25 * 1024 * 1024
        AND content_type IN ('image/jpeg', 'image/png', 'application/pdf')));
ALTER TABLE uploads DROP CONSTRAINT uploads_purpose_hx301;
ALTER TABLE uploads ADD CONSTRAINT uploads_purpose_hx301
    CHECK (purpose IN ('AVATAR', 'PROOF_PHOTO', 'VERIFICATION_DOC'));
