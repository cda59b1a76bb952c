-- name: cycle_messages
-- Everything a cycle said on the bus, in order.
SELECT id, topic, from_agent, payload::text AS payload FROM agent_messages WHERE correlation_id = $1 ORDER BY id

-- name: cycle_calls
-- The cycle's model calls from the ledger, in order.
SELECT agent, skill, skill_hash, route, model, input_tokens, output_tokens, cache_read_tokens,
       cost_usd::float8 AS cost_usd, latency_ms, outcome, error_class
  FROM llm_cost_ledger WHERE correlation_id = $1 ORDER BY id
