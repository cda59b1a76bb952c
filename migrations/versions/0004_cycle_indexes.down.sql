DROP INDEX IF EXISTS agent_messages_proposals;
DROP INDEX IF EXISTS agent_messages_signatures;
