-- name: heartbeats
-- `stopped`: the brain's last beat said it was shut down on purpose (not crashed, not hung).
SELECT substr(key, 11) AS name, extract(epoch FROM clock_timestamp() - updated_at)::float8 AS age,
       coalesce((value->>'stopped')::boolean, false) AS stopped
  FROM app_state WHERE key LIKE 'heartbeat:%'

-- name: account
SELECT equity, high_water_mark, day_start_equity, margin_used, locked FROM accounts WHERE account = %s

-- name: positions_without_stop
-- A position is protected only by a working stop order on the book, not by a number on the row.
SELECT p.symbol, p.qty FROM positions p
 WHERE p.account = %s AND NOT EXISTS (
       SELECT 1 FROM orders o WHERE o.symbol = p.symbol AND o.intent = 'close' AND o.order_type = 'stop'
          AND o.status = 'working')

-- name: bus
SELECT coalesce(sum(dead), 0)::int AS dead, coalesce(max(oldest_waiting_s), 0)::float8 AS oldest FROM bus_backlog

-- name: spend_today
SELECT coalesce(sum(cost_usd), 0)::float8 FROM llm_cost_ledger WHERE created_at >= date_trunc('day', now())

-- name: active_halts
SELECT id, level, invariant FROM halts WHERE resumed_at IS NULL

-- name: session_lock_timeout
-- A lock held on what the watchdog writes (brain_app can lock tables it may update) fails
-- that step, and the pass, rather than stopping the watch.
SET lock_timeout = '2s'
