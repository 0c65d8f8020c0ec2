DROP TRIGGER IF EXISTS tasks_cancelled_by_guard ON tasks;
DROP FUNCTION IF EXISTS tasks_cancelled_by_guard();
ALTER TABLE tasks DROP CONSTRAINT IF EXISTS tasks_cancelled_by_only_when_cancelled;
ALTER TABLE tasks DROP COLUMN IF EXISTS cancelled_by;
