-- name: bar_close
SELECT close FROM bars WHERE symbol = $1 AND ts = $2

-- name: latest_close
-- The symbol's latest close, and how many bars came after the proposal's bar ($2).
SELECT close, (SELECT count(*) FROM bars b WHERE b.symbol = $1 AND b.ts > $2) AS newer
  FROM bars WHERE symbol = $1 ORDER BY ts DESC LIMIT 1
