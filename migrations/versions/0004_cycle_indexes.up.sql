-- Every signature the executor handles looks up its proposal's other signatures, and every few
-- seconds it looks for proposals that never collected three; without these indexes each is a
-- scan of the whole message log. Partial: only signature and proposal rows pay on insert.
CREATE INDEX agent_messages_signatures ON agent_messages (causation_id) WHERE topic = 'trade.signature';
CREATE INDEX agent_messages_proposals ON agent_messages (created_at) WHERE topic = 'trade.proposal';
