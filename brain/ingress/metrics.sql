-- name: bus_backlog
SELECT consumer, pending, working, dead, untaken, coalesce(oldest_waiting_s, 0) FROM bus_backlog

-- name: cycles_by_outcome
SELECT outcome, count(*) FROM agent_journal WHERE kind = 'cycle' GROUP BY 1

-- name: model_calls
-- Model call attempts and their spend, by route and outcome.
SELECT route, outcome, count(*), coalesce(sum(cost_usd), 0)::float8 FROM llm_cost_ledger GROUP BY 1, 2

-- name: breakers
-- Each route's circuit breaker state (the key is breaker:<route>).
SELECT substr(key, 9), value->>'state' FROM app_state WHERE key LIKE 'breaker:%'

-- name: halt_level
SELECT coalesce(max(level), 0) FROM halts WHERE resumed_at IS NULL

-- name: mean_hop
-- Mean seconds from publish to done over the deliveries done in the last five minutes.
SELECT coalesce(avg(extract(epoch FROM d.done_at - m.created_at)), 0)::float8
  FROM agent_deliveries d JOIN agent_messages m ON m.id = d.message_id
 WHERE d.state = 'done' AND d.done_at > now() - interval '5 minutes'
