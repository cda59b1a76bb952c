-- name: trailing_bars
-- A symbol's last bars up to and including a time, at most a number of them, oldest first.
SELECT ts, open, high, low, close, volume FROM (
    SELECT ts, open, high, low, close, volume FROM bars WHERE symbol = $1 AND ts <= $2 ORDER BY ts DESC LIMIT $3) b
 ORDER BY ts
