-- name: latest_bar_time
-- The time of the symbol's latest stored bar, which a new bar must come after.
SELECT max(ts) FROM bars WHERE symbol = $1

-- name: insert_bar
INSERT INTO bars (symbol, ts, open, high, low, close, volume, source) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
