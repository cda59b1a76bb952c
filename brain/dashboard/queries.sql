-- name: state
SELECT coalesce(max(level), 0) FROM halts WHERE resumed_at IS NULL

-- name: active_halts
SELECT id, level, invariant, reason, raised_at FROM halts WHERE resumed_at IS NULL ORDER BY level DESC, id

-- name: account
-- The active book is the one its broker last wrote (paper, or ib when trading through IB).
SELECT account, equity, cash, high_water_mark, day_start_equity, locked FROM accounts ORDER BY updated_at DESC LIMIT 1

-- name: curve
-- At most ~400 points: every n-th mark of the equity history.
SELECT ts, equity FROM (
    SELECT ts, equity, row_number() OVER (ORDER BY ts) AS n, count(*) OVER () AS total
      FROM equity_history
     WHERE account = (SELECT account FROM accounts ORDER BY updated_at DESC LIMIT 1)) e
 WHERE n % greatest(1, total / 400) = 0 OR n = total ORDER BY ts

-- name: benchmark
-- Equal-weight buy and hold from the curve's first mark ($1, its marks in order): of the
-- symbols with a bar by then, each from its close then (a symbol listed later does not join
-- at par half-way), read on the curve's own marks only (not every bar ever stored).
WITH base AS (
    SELECT DISTINCT ON (symbol) symbol, close FROM bars WHERE ts <= ($1::timestamptz[])[1] ORDER BY symbol, ts DESC
)
SELECT b.ts, avg(b.close / base.close) FROM bars b JOIN base USING (symbol)
 WHERE b.ts = ANY($1::timestamptz[]) GROUP BY b.ts ORDER BY b.ts

-- name: journal
SELECT id, created_at, kind, symbol, outcome, title FROM agent_journal
 WHERE ($1::text IS NULL OR symbol = $1) AND ($2::text IS NULL OR outcome = $2)
   AND ($3::date IS NULL OR created_at::date = $3)
 ORDER BY id DESC LIMIT 100

-- name: journal_entry
SELECT id, title, body_md, file_path FROM agent_journal WHERE id = $1

-- name: positions
SELECT symbol, qty, avg_price, stop_price, take_profit, opened_at FROM positions ORDER BY symbol

-- name: orders
SELECT client_order_id, symbol, side, intent, order_type, qty, stop_price, limit_price, status, fill_price, created_at
  FROM orders ORDER BY id DESC LIMIT 50

-- name: backlog
SELECT consumer, pending, working, dead, untaken, oldest_waiting_s FROM bus_backlog ORDER BY consumer

-- name: messages
SELECT id, created_at, topic, from_agent, correlation_id FROM agent_messages ORDER BY id DESC LIMIT 50

-- name: dead
SELECT d.consumer, d.message_id, m.topic, d.attempts, d.last_error FROM agent_deliveries d
  JOIN agent_messages m ON m.id = d.message_id WHERE d.state = 'dead' ORDER BY d.message_id DESC LIMIT 50

-- name: costs_by
SELECT route, agent, skill, count(*), coalesce(sum(cost_usd), 0)::float8
  FROM llm_cost_ledger GROUP BY 1, 2, 3 ORDER BY 5 DESC, 4 DESC

-- name: costs_daily
SELECT created_at::date AS day, coalesce(sum(cost_usd), 0)::float8, count(*) FROM llm_cost_ledger
 GROUP BY 1 ORDER BY 1 DESC LIMIT 30

-- name: skills
SELECT DISTINCT ON (name) name, content_hash, loaded_at,
       (SELECT count(*) FROM skill_versions v2 WHERE v2.name = v.name) AS versions
  FROM skill_versions v ORDER BY name, loaded_at DESC, id DESC

-- name: rejections
SELECT name, path, error, rejected_at FROM skill_rejections ORDER BY id DESC LIMIT 20

-- name: halts
SELECT id, raised_at, level, invariant, reason, evidence::text, raised_by, resumed_at, resumed_by, resume_reason, forced
  FROM halts ORDER BY id DESC LIMIT 100
