-- name: backlog
SELECT consumer, pending, working, dead, untaken, oldest_waiting_s FROM bus_backlog ORDER BY consumer

-- name: replay
SELECT id, created_at, topic, from_agent, to_agent, correlation_id, causation_id, payload
  FROM agent_messages
 WHERE created_at >= %(start)s AND created_at < %(end)s
   AND (%(topics)s::text[] IS NULL OR topic = ANY(%(topics)s::text[]))
   AND (%(correlation)s::text IS NULL OR correlation_id = %(correlation)s::text)
 ORDER BY id

-- name: dead_letters
SELECT d.consumer, d.message_id, m.topic, d.attempts, d.last_error, m.created_at
  FROM agent_deliveries d JOIN agent_messages m ON m.id = d.message_id
 WHERE d.state = 'dead' AND (%(consumer)s::text IS NULL OR d.consumer = %(consumer)s::text)
 ORDER BY d.message_id

-- name: redrive
-- A fresh start: attempts reset, due now; the error stays until the next attempt replaces it.
UPDATE agent_deliveries
   SET state = 'pending', attempts = 0, available_at = clock_timestamp()
 WHERE state = 'dead' AND consumer = %(consumer)s::text
   AND (%(ids)s::bigint[] IS NULL OR message_id = ANY(%(ids)s::bigint[]))
