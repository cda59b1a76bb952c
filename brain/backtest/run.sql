-- name: equity_curve
SELECT ts, equity FROM equity_history WHERE account = 'paper' ORDER BY ts

-- name: closed_trades
-- When each position was closed and its P&L, in the order the fills were published.
SELECT (payload->>'at')::timestamptz AS at, (payload->>'pnl')::float8 AS pnl FROM agent_messages
 WHERE topic = 'order.filled' AND payload->>'intent' = 'close' ORDER BY id

-- name: vetoes_by_signer
SELECT payload->>'signer', count(*) FROM agent_messages WHERE topic = 'trade.signature'
   AND payload->>'verdict' = 'veto' GROUP BY 1 ORDER BY 1

-- name: hop_percentiles
-- Median and 99th percentile milliseconds from publish to done, per consumer.
SELECT d.consumer, percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM d.done_at - m.created_at) * 1000),
       percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM d.done_at - m.created_at) * 1000)
  FROM agent_deliveries d JOIN agent_messages m ON m.id = d.message_id
 WHERE d.state = 'done' GROUP BY 1 ORDER BY 1

-- name: decision_latencies
-- Milliseconds from each entry's market state to its order, less the time spent waiting on
-- model calls: what the code itself took to decide.
SELECT extract(epoch FROM o.created_at - s.created_at) * 1000
       - coalesce((SELECT sum(latency_ms) FROM llm_cost_ledger l WHERE l.correlation_id = o.correlation_id), 0)
  FROM orders o JOIN agent_messages s ON s.topic = 'market.state' AND s.correlation_id = o.correlation_id
 WHERE o.intent = 'open' AND o.parent_client_order_id IS NULL

-- name: cycles_by_outcome
SELECT outcome, count(*) FROM agent_journal WHERE kind = 'cycle' GROUP BY 1
