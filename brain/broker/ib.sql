-- The IB adapter's own queries; the book's common ones are in paper.sql.

-- name: ib_sync_account
-- The broker's own numbers; the high-water mark only rises, the day's start is the first
-- equity seen on a new day.
UPDATE accounts SET cash = $2, equity = $3, high_water_mark = greatest(high_water_mark, $3),
       day_start_equity = CASE WHEN day <> current_date OR day_start_equity = 0 THEN $3 ELSE day_start_equity END,
       day = current_date, margin_used = $4, updated_at = clock_timestamp()
 WHERE account = $1

-- name: ib_order_ids
UPDATE orders SET broker_order_id = $2, updated_at = clock_timestamp() WHERE client_order_id = $1

-- name: ib_order_known
SELECT 1 FROM orders WHERE client_order_id = $1 AND broker = 'ib'

-- name: ib_order_for_update
SELECT client_order_id, parent_client_order_id, correlation_id, symbol, side, intent, order_type, qty, status
  FROM orders WHERE client_order_id = $1 AND broker = 'ib' FOR UPDATE

-- name: ib_insert_fill
INSERT INTO fills (order_id, client_order_id, broker_fill_id, symbol, side, qty, price, commission, filled_at)
SELECT id, client_order_id, $2, symbol, side, $3, $4, $5, $6 FROM orders WHERE client_order_id = $1
ON CONFLICT (broker_fill_id) DO NOTHING
RETURNING 1

-- name: ib_filled_so_far
SELECT coalesce(sum(qty), 0) AS qty, coalesce(sum(qty * price) / nullif(sum(qty), 0), 0) AS vwap,
       coalesce(sum(commission), 0) AS commission
  FROM fills WHERE client_order_id = $1

-- name: ib_commission
-- IB reports commissions after the execution, in a separate message.
UPDATE fills SET commission = $2 WHERE broker_fill_id = $1

-- name: ib_dead_order
UPDATE orders SET status = 'cancelled', updated_at = clock_timestamp()
 WHERE client_order_id = $1 AND broker = 'ib' AND status IN ('new', 'working')

-- name: ib_position_qty
UPDATE positions SET qty = $3, updated_at = clock_timestamp() WHERE account = $1 AND symbol = $2

-- name: ib_take_position
-- IB is the truth for what is held; the stop and take-profit the book knew are kept.
INSERT INTO positions (account, symbol, qty, avg_price, opened_at) VALUES ($1, $2, $3, $4, clock_timestamp())
ON CONFLICT (account, symbol) DO UPDATE
   SET qty = excluded.qty, avg_price = excluded.avg_price, updated_at = clock_timestamp()

-- name: ib_all_refs
SELECT client_order_id FROM orders WHERE broker = 'ib'

-- name: ib_open_in_book
SELECT client_order_id, status FROM orders WHERE broker = 'ib' AND status IN ('new', 'working') ORDER BY id
