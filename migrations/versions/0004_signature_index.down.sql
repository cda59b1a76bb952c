DROP INDEX IF EXISTS agent_messages_signatures;
