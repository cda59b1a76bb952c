-- name: anthropic_usage
-- The Anthropic route's input tokens (fresh, cache reads, cache writes) and cost over the bench's calls.
SELECT sum(input_tokens) AS fresh, sum(cache_read_tokens) AS reads,
       sum(cache_write_tokens) AS writes, sum(cost_usd)::float8 AS cost
  FROM llm_cost_ledger WHERE route = 'anthropic'
