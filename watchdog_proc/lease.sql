-- name: hold
-- Take or renew the lease: written when it is this watchdog's, or when its holder has not
-- renewed it for ttl seconds; a row comes back only when this watchdog holds it now.
INSERT INTO app_state (key, value, updated_at) VALUES (%(key)s, %(me)s::jsonb, clock_timestamp())
ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
 WHERE app_state.value->>'instance' = excluded.value->>'instance'
    OR app_state.updated_at < clock_timestamp() - make_interval(secs => %(ttl)s)
RETURNING 1

-- name: holder
-- The lease's holder and how many seconds ago it renewed it.
SELECT value, extract(epoch FROM clock_timestamp() - updated_at)::float8
  FROM app_state WHERE key = %(key)s

-- name: give_up
-- Dated far back, the lease is free for the next claim.
UPDATE app_state SET updated_at = 'epoch'
 WHERE key = %(key)s AND value->>'instance' = %(instance)s
