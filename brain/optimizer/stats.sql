-- name: proposals
-- The period's trade proposals, each with the outcome of its cycle (the latest one).
SELECT p.correlation_id, p.payload::text,
       (SELECT o.payload->>'outcome' FROM agent_messages o WHERE o.topic = 'cycle.outcome'
         AND o.correlation_id = p.correlation_id ORDER BY o.id DESC LIMIT 1) AS outcome
  FROM agent_messages p WHERE p.topic = 'trade.proposal' AND p.created_at >= $1 AND p.created_at < $2

-- name: signatures
-- Every signature of the period: signer, verdict, and the skill version that signed ('code'
-- for a signer without a model call).
SELECT s.payload->>'signer', s.payload->>'verdict', coalesce(s.payload->'call'->>'skill_hash', 'code')
  FROM agent_messages s WHERE s.topic = 'trade.signature' AND s.created_at >= $1 AND s.created_at < $2

-- name: skipped_setups
-- The market states of the period's skipped cycles that had a signalled side: the setups
-- not taken, for their counterfactual.
SELECT st.payload::text FROM agent_messages k
  JOIN agent_messages st ON st.topic = 'market.state' AND st.correlation_id = k.correlation_id
 WHERE k.topic = 'trade.skip' AND k.created_at >= $1 AND k.created_at < $2
   AND st.payload->>'signalled_side' IS NOT NULL

-- name: closed_trades
-- The P&L of the period's closing fills, with the regime the opening proposal was made in.
SELECT (c.payload->>'pnl')::float8, p.payload->>'regime' FROM agent_messages c
  JOIN orders o ON o.client_order_id = c.payload->>'client_order_id'
  JOIN orders parent ON parent.client_order_id = o.parent_client_order_id
  JOIN agent_messages p ON p.topic = 'trade.proposal' AND p.correlation_id = parent.correlation_id
 WHERE c.topic = 'order.filled' AND c.payload->>'intent' = 'close' AND c.created_at >= $1 AND c.created_at < $2

-- name: closed_trades_all_time
SELECT count(*) FROM agent_messages WHERE topic = 'order.filled' AND payload->>'intent' = 'close'

-- name: costs_by_route
SELECT route, coalesce(sum(cost_usd), 0)::float8 FROM llm_cost_ledger
 WHERE created_at >= $1 AND created_at < $2 GROUP BY 1

-- name: fill_count
SELECT count(*) FROM fills WHERE created_at >= $1 AND created_at < $2

-- name: bars_after
-- The next bars of a symbol after a time, oldest first: how a setup would have played out.
SELECT open, high, low FROM bars WHERE symbol = $1 AND ts > $2 ORDER BY ts LIMIT $3

-- name: trending_regimes
-- The period's regime calls that said trending (up or down), to check against the bars after.
SELECT a.payload->>'symbol', (a.payload->>'bar_time')::timestamptz, a.payload->>'regime'
  FROM agent_messages a WHERE a.topic = 'regime.assessment' AND a.created_at >= $1 AND a.created_at < $2
   AND a.payload->>'regime' LIKE 'trending%'
