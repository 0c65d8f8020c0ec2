DROP TRIGGER IF EXISTS messages_watch ON messages;
