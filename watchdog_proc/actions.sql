-- name: raise_halt
INSERT INTO halts (level, invariant, reason, evidence, raised_by) VALUES (%s, %s, %s, %s::jsonb, %s) RETURNING id

-- name: cancel_working
-- L3 and above: nothing new may fill. Exits (stops, take-profits) stay working unless flattening.
UPDATE orders SET status = 'cancelled', updated_at = clock_timestamp()
 WHERE status IN ('new', 'working') AND intent = 'open' RETURNING client_order_id, intent

-- name: cancel_all
-- Everything but the watchdog's own closing orders, which are the point of an L4.
UPDATE orders SET status = 'cancelled', updated_at = clock_timestamp()
 WHERE status IN ('new', 'working') AND client_order_id NOT LIKE 'flatten-%' RETURNING client_order_id, intent

-- name: cancelled_entry_cycles
-- The cycles of entries a halt just cancelled that have no outcome yet (no fill will end them).
SELECT o.symbol, o.signal_time, o.correlation_id FROM orders o
 WHERE o.client_order_id = ANY(%s) AND o.correlation_id IS NOT NULL AND o.signal_time IS NOT NULL
   AND NOT EXISTS (SELECT 1 FROM agent_messages m WHERE m.topic = 'cycle.outcome'
                                                    AND m.correlation_id = o.correlation_id)

-- name: positions
SELECT p.symbol, p.qty, p.avg_price,
       (SELECT close FROM bars b WHERE b.symbol = p.symbol ORDER BY ts DESC LIMIT 1) AS last_close
  FROM positions p WHERE p.account = 'paper' FOR UPDATE

-- name: close_order
INSERT INTO orders (client_order_id, symbol, side, intent, order_type, qty, status, broker, filled_at, fill_price)
VALUES (%s, %s, %s, 'close', 'market', %s, 'filled', 'paper', clock_timestamp(), %s) RETURNING id

-- name: close_fill
INSERT INTO fills (order_id, client_order_id, broker_fill_id, symbol, side, qty, price, commission, filled_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, 0, clock_timestamp())

-- name: delete_position
DELETE FROM positions WHERE account = 'paper' AND symbol = %s

-- name: settle_account
UPDATE accounts SET cash = cash + %s, equity = cash + %s, margin_used = 0, locked = true,
       updated_at = clock_timestamp()
 WHERE account = 'paper'

-- name: record_page
INSERT INTO operator_pages (halt_id, target, status, attempts, error) VALUES (%s, %s, %s, %s, %s)

-- name: ib_flatten_order
-- The watchdog's closing market order at IB; the brain books its fill by this id.
INSERT INTO orders (client_order_id, symbol, side, intent, order_type, qty, status, broker)
VALUES (%s, %s, %s, 'close', 'market', %s, 'working', 'ib')
ON CONFLICT (client_order_id) DO NOTHING

-- name: lock_book
UPDATE accounts SET locked = true, updated_at = clock_timestamp() WHERE account = %s

-- name: highest_active_level
-- The level every pass keeps in force: the highest halt not yet lifted (0 when none).
SELECT coalesce(max(level), 0) FROM halts WHERE resumed_at IS NULL

-- name: paper_unlocked
SELECT 1 FROM accounts WHERE account = 'paper' AND NOT locked

-- name: paper_has_positions
SELECT 1 FROM positions WHERE account = 'paper' LIMIT 1
