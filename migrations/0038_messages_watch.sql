-- depends: 0037_watch_events
-- Task messages are events of their task's watch stream (TaskService.WatchTask: MESSAGE_SENT),
-- through 0037's generic emitter: written in the message's own transaction, like every event.
CREATE TRIGGER messages_watch AFTER INSERT ON messages FOR EACH ROW
    EXECUTE FUNCTION watch_emit('MESSAGE_SENT', 'task_id', '', 'id', 'sender_id', 'created_at');
