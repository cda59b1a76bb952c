-- The model calls since a time, grouped by route, agent, skill, model or day (one query
-- each, chosen by `--by`): calls, failed attempts, tokens, cost and mean latency, the
-- costliest first.

-- name: costs_by_route
SELECT route AS key, count(*), count(*) FILTER (WHERE outcome <> 'ok'),
       sum(input_tokens), sum(output_tokens), sum(cache_read_tokens), sum(cache_write_tokens),
       coalesce(sum(cost_usd), 0)::float8, coalesce(avg(latency_ms), 0)::float8
  FROM llm_cost_ledger WHERE created_at >= %s GROUP BY 1 ORDER BY 8 DESC, 1

-- name: costs_by_agent
SELECT agent AS key, count(*), count(*) FILTER (WHERE outcome <> 'ok'),
       sum(input_tokens), sum(output_tokens), sum(cache_read_tokens), sum(cache_write_tokens),
       coalesce(sum(cost_usd), 0)::float8, coalesce(avg(latency_ms), 0)::float8
  FROM llm_cost_ledger WHERE created_at >= %s GROUP BY 1 ORDER BY 8 DESC, 1

-- name: costs_by_skill
SELECT skill AS key, count(*), count(*) FILTER (WHERE outcome <> 'ok'),
       sum(input_tokens), sum(output_tokens), sum(cache_read_tokens), sum(cache_write_tokens),
       coalesce(sum(cost_usd), 0)::float8, coalesce(avg(latency_ms), 0)::float8
  FROM llm_cost_ledger WHERE created_at >= %s GROUP BY 1 ORDER BY 8 DESC, 1

-- name: costs_by_model
SELECT model AS key, count(*), count(*) FILTER (WHERE outcome <> 'ok'),
       sum(input_tokens), sum(output_tokens), sum(cache_read_tokens), sum(cache_write_tokens),
       coalesce(sum(cost_usd), 0)::float8, coalesce(avg(latency_ms), 0)::float8
  FROM llm_cost_ledger WHERE created_at >= %s GROUP BY 1 ORDER BY 8 DESC, 1

-- name: costs_by_day
SELECT date_trunc('day', created_at)::date AS key, count(*), count(*) FILTER (WHERE outcome <> 'ok'),
       sum(input_tokens), sum(output_tokens), sum(cache_read_tokens), sum(cache_write_tokens),
       coalesce(sum(cost_usd), 0)::float8, coalesce(avg(latency_ms), 0)::float8
  FROM llm_cost_ledger WHERE created_at >= %s GROUP BY 1 ORDER BY 8 DESC, 1
