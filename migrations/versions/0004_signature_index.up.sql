-- Every signature the executor handles looks up its proposal's other signatures; without an
-- index that is a scan of the whole message log per signature. Partial: only signature rows
-- pay for it on insert.
CREATE INDEX agent_messages_signatures ON agent_messages (causation_id) WHERE topic = 'trade.signature';
