-- name: market_state
SELECT payload::text FROM agent_messages WHERE id = $1 AND topic = 'market.state'

-- name: entering
-- Entry orders of a broker placed and not filled yet, as a signed quantity per symbol: the
-- paper broker fills them at the next bar's open, IB when it does, and until then
-- `positions` does not show them.
SELECT symbol, sum(CASE WHEN side = 'buy' THEN qty ELSE -qty END) AS qty
  FROM orders WHERE broker = $1 AND intent = 'open' AND status IN ('new', 'working')
 GROUP BY symbol

-- name: holding
-- Whether the account ($3) holds the symbol ($2), or the broker ($1) is entering it (see entering).
SELECT EXISTS (SELECT 1 FROM positions WHERE account = $3 AND symbol = $2)
    OR EXISTS (SELECT 1 FROM orders WHERE broker = $1 AND intent = 'open' AND status IN ('new', 'working')
                                      AND symbol = $2)
