-- The foundation: PostGIS, and the transactional outbox that every later job goes through.
--
-- Domain code writes an outbox row in the same transaction as the change that causes it; a
-- relay moves committed rows to Dramatiq and stamps them dispatched. A message is therefore
-- never lost because Redis was down at commit time.

CREATE EXTENSION IF NOT EXISTS postgis;

CREATE TABLE outbox (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- the Dramatiq actor to run, e.g. 'email.send'
    job           text        NOT NULL
                  CONSTRAINT outbox_job_name CHECK (job ~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$'),
    payload       jsonb       NOT NULL DEFAULT '{}'::jsonb
                  CONSTRAINT outbox_payload_object CHECK (jsonb_typeof(payload) = 'object'),
    created_at    timestamptz NOT NULL DEFAULT now(),
    -- not before this time (a delayed job)
    available_at  timestamptz NOT NULL DEFAULT now(),
    dispatched_at timestamptz,
    attempts      integer     NOT NULL DEFAULT 0 CONSTRAINT outbox_attempts_non_negative CHECK (attempts >= 0),
    last_error    text,
    CONSTRAINT outbox_dispatched_after_created CHECK (dispatched_at IS NULL OR dispatched_at >= created_at)
);

CREATE INDEX outbox_undispatched_idx ON outbox (id) WHERE dispatched_at IS NULL;
COMMENT ON INDEX outbox_undispatched_idx IS 'The relay''s access path: the undispatched rows in order. Partial, so it stays as small as the backlog however long the table grows.';
CREATE INDEX outbox_dispatched_at_idx ON outbox (dispatched_at) WHERE dispatched_at IS NOT NULL;
COMMENT ON INDEX outbox_dispatched_at_idx IS 'The purge''s access path: dispatched rows by age.';
