-- name: try_order
-- An opening order, as the brain would insert it: refused by the orders trigger once a halt
-- of L2 or above is in force. The bench rolls it back either way.
INSERT INTO orders (client_order_id, symbol, side, intent, order_type, qty)
VALUES (%s, 'AAPL', 'buy', 'open', 'market', 1)

-- name: clear_book
-- Run without parameters, as one statement of four commands.
DELETE FROM fills; DELETE FROM orders; DELETE FROM positions; DELETE FROM accounts

-- name: seed_account
INSERT INTO accounts (account, cash, equity, high_water_mark, day_start_equity, day)
VALUES ('paper', 100000, 100000, 100000, 100000, current_date)

-- name: seed_bar
-- A current bar for the symbol at one price (open, high, low and close).
INSERT INTO bars (symbol, ts, open, high, low, close, volume) VALUES (%s, now(), %s, %s, %s, %s, 1)
ON CONFLICT DO NOTHING

-- name: seed_position
INSERT INTO positions (symbol, qty, avg_price, stop_price, opened_at) VALUES (%s, %s, %s, 1, now())

-- name: seed_stop_order
-- A working stop order on the symbol.
INSERT INTO orders (client_order_id, symbol, side, intent, order_type, qty, stop_price, status)
VALUES (%s, %s, 'sell', 'close', 'stop', 1, 1, 'working')

-- name: breach_drawdown
-- Equity at 80% of the 100000 high-water mark: a drawdown the watchdog halts on.
UPDATE accounts SET equity = 80000

-- name: position_count
SELECT count(*) FROM positions

-- name: resume_halts
UPDATE halts SET resumed_at = now(), resumed_by = 'bench', resume_reason = 'bench' WHERE resumed_at IS NULL
