-- name: outcomes
SELECT outcome, count(*) FROM agent_journal WHERE kind = 'cycle' GROUP BY outcome ORDER BY outcome

-- name: proposals
SELECT count(*) FROM agent_messages WHERE topic = 'trade.proposal'

-- name: vetoes_by_role
SELECT payload->>'signer' AS signer, count(*) FROM agent_messages
 WHERE topic = 'trade.signature' AND payload->>'verdict' = 'veto' GROUP BY 1 ORDER BY 1

-- name: orders
SELECT count(*) FILTER (WHERE intent = 'open') AS entries, count(*) FILTER (WHERE intent = 'close' AND status = 'filled') AS exits
  FROM orders

-- name: fills
SELECT count(*) FROM fills

-- name: account
SELECT equity, cash, high_water_mark FROM accounts WHERE account = $1

-- name: max_drawdown
SELECT coalesce(max(1 - equity / peak), 0) FROM (
    SELECT equity, max(equity) OVER (ORDER BY ts) AS peak FROM equity_history WHERE account = $1) e

-- name: model_calls
SELECT count(*), coalesce(sum(cost_usd), 0)::float8, count(*) FILTER (WHERE outcome <> 'ok')
  FROM llm_cost_ledger

-- name: settled
SELECT coalesce(sum(pending + working + untaken), 0) FROM bus_backlog
