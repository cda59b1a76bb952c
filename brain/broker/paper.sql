-- name: ensure_account
INSERT INTO accounts (account, cash, equity, high_water_mark, day_start_equity, day)
VALUES ($1, $2, $2, $2, $2, current_date)
ON CONFLICT (account) DO NOTHING

-- name: account
SELECT account, cash, equity, high_water_mark, day_start_equity, day, margin_used, locked
  FROM accounts WHERE account = $1

-- name: account_for_update
SELECT account, cash, equity, high_water_mark, day_start_equity, day, margin_used, locked
  FROM accounts WHERE account = $1 FOR UPDATE

-- name: positions
SELECT symbol, qty, avg_price, stop_price, take_profit, opened_at FROM positions WHERE account = $1 ORDER BY symbol

-- name: position
SELECT symbol, qty, avg_price, stop_price, take_profit, opened_at FROM positions
 WHERE account = $1 AND symbol = $2 FOR UPDATE

-- name: positions_for_update
SELECT symbol, qty, avg_price, stop_price, take_profit, opened_at FROM positions
 WHERE account = $1 ORDER BY symbol FOR UPDATE

-- name: insert_order
-- The unique client_order_id makes placement idempotent: a redelivered approval finds its
-- order already there and places nothing.
INSERT INTO orders (client_order_id, parent_client_order_id, correlation_id, symbol, side, intent,
                    order_type, qty, stop_price, limit_price, status, broker, signal_time)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $13, $12)
ON CONFLICT (client_order_id) DO NOTHING
RETURNING id

-- name: entries_due
-- Market entries decided on an earlier bar fill at this bar's open; one look for all the
-- bars ($1 symbols, $2 their times).
SELECT o.id, o.client_order_id, o.correlation_id, o.symbol, o.side, o.qty
  FROM orders o JOIN unnest($1::text[], $2::timestamptz[]) AS b(symbol, ts)
       ON o.symbol = b.symbol AND o.signal_time < b.ts
 WHERE o.broker = 'paper' AND o.intent = 'open' AND o.order_type = 'market' AND o.status = 'working'
 ORDER BY o.id FOR UPDATE OF o

-- name: mark_filled
UPDATE orders SET status = 'filled', filled_at = $2, fill_price = $3, updated_at = clock_timestamp()
 WHERE client_order_id = $1

-- name: activate_children
UPDATE orders SET status = 'working', updated_at = clock_timestamp()
 WHERE parent_client_order_id = $1 AND status = 'new'

-- name: cancel_siblings
UPDATE orders SET status = 'cancelled', updated_at = clock_timestamp()
 WHERE parent_client_order_id = $1 AND client_order_id <> $2 AND status IN ('new', 'working')

-- name: insert_fill
INSERT INTO fills (order_id, client_order_id, broker_fill_id, symbol, side, qty, price, commission, filled_at)
SELECT id, client_order_id, $2, symbol, side, $3, $4, $5, $6 FROM orders WHERE client_order_id = $1
ON CONFLICT (broker_fill_id) DO NOTHING

-- name: upsert_position
INSERT INTO positions (account, symbol, qty, avg_price, stop_price, take_profit, opened_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (account, symbol) DO UPDATE
   SET qty = excluded.qty, avg_price = excluded.avg_price, stop_price = excluded.stop_price,
       take_profit = excluded.take_profit, updated_at = clock_timestamp()

-- name: delete_position
DELETE FROM positions WHERE account = $1 AND symbol = $2

-- name: exit_orders
SELECT symbol, client_order_id, parent_client_order_id, order_type, stop_price, limit_price, correlation_id
  FROM orders
 WHERE broker = 'paper' AND symbol = ANY($1::text[]) AND intent = 'close' AND status = 'working'
   AND order_type IN ('stop', 'take_profit')

-- name: latest_closes
SELECT DISTINCT ON (symbol) symbol, close FROM bars WHERE symbol = ANY($1::text[]) ORDER BY symbol, ts DESC

-- name: update_account
UPDATE accounts SET cash = $2, equity = $3, high_water_mark = greatest(high_water_mark, $3),
       day_start_equity = $4, day = $5, margin_used = $6, updated_at = clock_timestamp()
 WHERE account = $1

-- name: working_orders
SELECT client_order_id, symbol, intent, order_type, status FROM orders
 WHERE broker = 'paper' AND status IN ('new', 'working') ORDER BY id

-- name: record_equity
INSERT INTO equity_history (account, ts, equity, cash) VALUES ($1, $2, $3, $4)
ON CONFLICT (account, ts) DO UPDATE SET equity = excluded.equity, cash = excluded.cash

-- name: bracket_levels
SELECT (SELECT stop_price FROM orders WHERE client_order_id = $1) AS stop,
       (SELECT limit_price FROM orders WHERE client_order_id = $2) AS take_profit

-- name: bars_after
-- Whether any symbol's stored bar is on a later day than $1.
SELECT EXISTS (SELECT 1 FROM bars WHERE ts >= (($1::timestamptz AT TIME ZONE 'UTC')::date + 1) AT TIME ZONE 'UTC')

-- name: commission_paid
-- What an order's fills cost in commissions so far (a round trip's P&L counts its entry's).
SELECT coalesce(sum(commission), 0)::float8 FROM fills WHERE client_order_id = $1
