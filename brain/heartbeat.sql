-- name: beat
-- Record that a process is alive now, by the database clock (asyncpg).
INSERT INTO app_state (key, value, updated_at) VALUES ($1, $2::jsonb, clock_timestamp())
ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at

-- name: beat_sync
-- The same for psycopg.
INSERT INTO app_state (key, value, updated_at) VALUES (%s, %s::jsonb, clock_timestamp())
ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at

-- name: ages
-- Seconds since each heartbeat, by name (the key is heartbeat:<name>). Run without
-- parameters by both drivers: the % is the LIKE wildcard.
SELECT substr(key, 11) AS name, extract(epoch FROM clock_timestamp() - updated_at) AS age_s, value
  FROM app_state WHERE key LIKE 'heartbeat:%'
