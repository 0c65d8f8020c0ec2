DROP FUNCTION IF EXISTS accept_task(uuid, uuid, text, text);
DROP FUNCTION IF EXISTS post_task(uuid, text, text, text, bigint, text, text, text, float8, float8, boolean,
                                  timestamptz, text, smallint, boolean, boolean);
