-- Undo 0037_watch_events.
DROP TRIGGER notifications_watch_read ON notifications;
DROP FUNCTION notifications_watch_read();
DROP TRIGGER notifications_watch_created ON notifications;
DROP TRIGGER disputes_watch_resolved ON disputes;
DROP TRIGGER disputes_watch_opened ON disputes;
DROP TRIGGER proofs_watch_reviewed ON proofs;
DROP TRIGGER proofs_watch_submitted ON proofs;
DROP TRIGGER tasks_watch ON tasks;
DROP FUNCTION tasks_watch();
DROP FUNCTION watch_emit();
DROP FUNCTION watch_sequence(integer);
DROP TABLE watch_horizon;
DROP TABLE watch_events;
DROP FUNCTION watch_events_guard();
