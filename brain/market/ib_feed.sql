-- name: bar_stored
SELECT 1 FROM bars WHERE symbol = $1 AND ts = $2
