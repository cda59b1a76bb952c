-- name: record
INSERT INTO llm_cost_ledger (agent, skill, skill_hash, correlation_id, route, model, input_tokens,
                             output_tokens, cache_read_tokens, cache_write_tokens, cost_usd, latency_ms,
                             outcome, error_class, error_detail)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)

-- name: spent_today
SELECT coalesce(sum(cost_usd), 0)::float8 FROM llm_cost_ledger WHERE created_at >= date_trunc('day', now())

-- name: save_breaker
INSERT INTO app_state (key, value, updated_at) VALUES ('breaker:' || $1, $2::jsonb, clock_timestamp())
ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at

-- name: breakers_off
-- Routes a previous run listed and this one does not.
UPDATE app_state SET value = jsonb_build_object('state', 'off'), updated_at = clock_timestamp()
 WHERE key LIKE 'breaker:%' AND substr(key, 9) <> ALL($1::text[])

-- name: commit_without_waiting
-- For the transaction that writes a batch of zero-cost rows: its commit does not wait for the
-- disk (a crash can lose the last batch, never a paid row).
SET LOCAL synchronous_commit TO off
