-- name: watchdog_age
-- Seconds since the watchdog's last heartbeat, by the database clock (NULL before its first).
SELECT extract(epoch FROM clock_timestamp() - updated_at) FROM app_state WHERE key = 'heartbeat:watchdog'
