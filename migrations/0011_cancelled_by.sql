-- depends: 0010_nearby_open_tasks
-- Who cancelled a task, so that a cancel retried by the one who cancelled gets a truthful OK
-- (and anyone else the terminal-state error). Set by the CANCELLED transition, and only by it.

ALTER TABLE tasks ADD COLUMN cancelled_by uuid REFERENCES users (id);
ALTER TABLE tasks ADD CONSTRAINT tasks_cancelled_by_only_when_cancelled
    CHECK (cancelled_by IS NULL OR state = 'CANCELLED');

CREATE FUNCTION tasks_cancelled_by_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.cancelled_by IS DISTINCT FROM OLD.cancelled_by
       AND NOT (OLD.state <> 'CANCELLED' AND NEW.state = 'CANCELLED') THEN
        PERFORM hx_raise('HX003', 'cancelled_by is recorded by the cancellation itself');
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER tasks_cancelled_by_guard BEFORE UPDATE OF cancelled_by ON tasks
    FOR EACH ROW EXECUTE FUNCTION tasks_cancelled_by_guard();
