-- name: breakers
-- Each route's circuit breaker (the key is breaker:<route>). Run without parameters: the %
-- is the LIKE wildcard.
SELECT key, value FROM app_state WHERE key LIKE 'breaker:%' ORDER BY key

-- name: active_account
-- The book its broker wrote last (see gather).
SELECT equity, cash, high_water_mark, day_start_equity, locked FROM accounts ORDER BY updated_at DESC LIMIT 1

-- name: positions
SELECT symbol, qty, avg_price, stop_price, take_profit FROM positions ORDER BY symbol

-- name: spend_today
-- Model spend and call attempts since midnight (the database's time zone).
SELECT coalesce(sum(cost_usd), 0)::float8, count(*) FROM llm_cost_ledger WHERE created_at >= date_trunc('day', now())

-- name: failed_pages
SELECT count(*) FROM operator_pages WHERE status = 'failed'

-- name: links
-- The broker link the broker heartbeat reports, and the watchdog's own IB link.
SELECT value->>'broker', (SELECT value->>'ib' FROM app_state WHERE key = 'heartbeat:watchdog')
  FROM app_state WHERE key = 'heartbeat:broker'
