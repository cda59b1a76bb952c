-- name: publish
-- One statement, and outside a transaction one commit: insert the message and wake
-- listeners (the notification carries the topic only; consumers always re-read the table).
-- Fan-out to consumers happens in their claims, off this commit path. $7 > 0 announces a
-- window in the notification, as "topic window_ms" (see brain/bus/publisher.py).
-- Only a message someone will receive is worth a notification: NOTIFY serialises committing
-- notifiers on one database-wide lock, and a woken consumer with nothing to take wastes a claim.
WITH msg AS (
    INSERT INTO agent_messages (topic, from_agent, to_agent, correlation_id, causation_id, payload)
    VALUES ($1, $2, $3, $4, $5, $6::jsonb)
    RETURNING id
), heard AS (
    SELECT EXISTS (SELECT 1 FROM bus_subscriptions
                    WHERE topic = $1 AND ($3::text IS NULL OR consumer = $3)) AS yes
)
SELECT msg.id, heard.yes AS heard,
       CASE WHEN heard.yes THEN pg_notify('brain_bus', CASE WHEN $7 > 0 THEN $1 || ' ' || $7 ELSE $1 END) END
  FROM msg, heard

-- name: publish_quiet
-- Publish without a wake-up: the window its producer announced covers it (see brain/bus/publisher.py).
INSERT INTO agent_messages (topic, from_agent, to_agent, correlation_id, causation_id, payload)
VALUES ($1, $2, $3, $4, $5, $6::jsonb)
RETURNING id

-- name: notify
-- A wake-up on its own: for a message that committed after its producer's window closed.
SELECT pg_notify('brain_bus', $1)

-- name: publish_many
-- The batched form of publish: parallel arrays, one notification per topic with a recipient.
WITH msg AS (
    INSERT INTO agent_messages (topic, from_agent, to_agent, correlation_id, causation_id, payload)
    SELECT t, f, ta, c, ca, p::jsonb
      FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[])
           AS u(t, f, ta, c, ca, p)
    RETURNING id, topic, to_agent
), woken AS (
    SELECT count(pg_notify('brain_bus', t.topic)) AS n
      FROM (SELECT DISTINCT topic FROM msg
             WHERE EXISTS (SELECT 1 FROM bus_subscriptions s
                            WHERE s.topic = msg.topic AND (msg.to_agent IS NULL OR s.consumer = msg.to_agent))) t
)
SELECT array_agg(msg.id ORDER BY msg.id) AS ids, (SELECT n FROM woken) AS woken FROM msg

-- name: register_consumer
-- A new consumer starts from now; a known one keeps its cursor, so what was published while
-- it was down is taken in on its first claim.
INSERT INTO bus_consumers (consumer) VALUES ($1) ON CONFLICT DO NOTHING

-- name: subscribe
INSERT INTO bus_subscriptions (topic, consumer)
SELECT unnest($1::text[]), $2
ON CONFLICT DO NOTHING

-- name: unsubscribe_others
-- A consumer's topic list is whatever it declares now; drop the ones it no longer wants.
DELETE FROM bus_subscriptions WHERE consumer = $1 AND topic <> ALL($2::text[])

-- name: claim
-- Take in newly committed messages, then claim a batch under a lease (bus_claim is
-- explained at its definition in migrations/schema.sql).
SELECT * FROM bus_claim($1, $2, $3, $4)

-- name: ack
-- Done only while this claim still holds the lease; the caller writes outputs for the
-- returned ids in the same transaction, so outputs exist exactly once.
UPDATE agent_deliveries
   SET state = 'done', done_at = clock_timestamp(), lease_until = NULL
 WHERE consumer = $3 AND message_id = ANY($1::bigint[]) AND lease_owner = $2 AND state = 'working'
RETURNING message_id

-- name: ack_and_publish
-- The usual ack as one statement, so one round trip and its own commit: mark done what this
-- claim still holds ($1..$3, as in ack) and publish the outputs ($5..$10) of exactly those
-- messages ($4 names each output's source message).
WITH acked AS (
    UPDATE agent_deliveries
       SET state = 'done', done_at = clock_timestamp(), lease_until = NULL
     WHERE consumer = $3 AND message_id = ANY($1::bigint[]) AND lease_owner = $2 AND state = 'working'
    RETURNING message_id
), msg AS (
    INSERT INTO agent_messages (topic, from_agent, to_agent, correlation_id, causation_id, payload)
    SELECT t, f, ta, c, ca, p::jsonb
      FROM unnest($4::bigint[], $5::text[], $6::text[], $7::text[], $8::text[], $9::bigint[], $10::text[])
           WITH ORDINALITY AS u(src, t, f, ta, c, ca, p, n)
     WHERE u.src IN (SELECT message_id FROM acked)
     ORDER BY n
    RETURNING topic, to_agent
), woken AS (
    SELECT count(pg_notify('brain_bus', t.topic)) AS n
      FROM (SELECT DISTINCT topic FROM msg
             WHERE EXISTS (SELECT 1 FROM bus_subscriptions s
                            WHERE s.topic = msg.topic AND (msg.to_agent IS NULL OR s.consumer = msg.to_agent))) t
)
SELECT array(SELECT message_id FROM acked) AS held, (SELECT n FROM woken) AS woken

-- name: renew
-- Handlers still at work keep their leases: extend what this worker still holds.
UPDATE agent_deliveries SET lease_until = clock_timestamp() + make_interval(secs => $4)
 WHERE consumer = $3 AND message_id = ANY($1::bigint[]) AND lease_owner = $2 AND state = 'working'

-- name: retry
-- A failed attempt: back off, or dead-letter once attempts are used up (or at once).
UPDATE agent_deliveries
   SET state = CASE WHEN $5 OR attempts >= $3 THEN 'dead' ELSE 'pending' END,
       available_at = clock_timestamp() + make_interval(secs => $4),
       last_error = $6, lease_owner = NULL, lease_until = NULL
 WHERE consumer = $7 AND message_id = $1 AND lease_owner = $2 AND state = 'working'
RETURNING state

-- name: reclaim_expired
-- Work whose lease ran out (its worker died or hung) goes back to pending, where the next
-- claim takes it first (lowest id); its attempt was counted when it was claimed, and one that
-- has used them all (it keeps killing its worker) is dead-lettered.
UPDATE agent_deliveries
   SET state = CASE WHEN attempts >= $2 THEN 'dead' ELSE 'pending' END,
       available_at = clock_timestamp(), lease_owner = NULL, lease_until = NULL,
       last_error = CASE WHEN attempts >= $2 THEN 'lease expired on every attempt' ELSE last_error END
 WHERE consumer = $1 AND state = 'working' AND lease_until < clock_timestamp()
RETURNING message_id, state

-- name: release
-- A stop hands back claimed work: what was never started without spending an attempt ($4),
-- what it cut off mid-handler with its attempt counted.
UPDATE agent_deliveries
   SET state = 'pending', attempts = CASE WHEN $4 THEN greatest(attempts - 1, 0) ELSE attempts END,
       lease_owner = NULL, lease_until = NULL
 WHERE consumer = $3 AND message_id = ANY($1::bigint[]) AND lease_owner = $2 AND state = 'working'

-- name: replay
SELECT id, created_at, topic, from_agent, to_agent, correlation_id, causation_id, payload::text AS payload
  FROM agent_messages
 WHERE created_at >= $1 AND created_at < $2
   AND ($3::text[] IS NULL OR topic = ANY($3::text[]))
 ORDER BY id

-- name: backlog
SELECT consumer, pending, working, dead, untaken, oldest_waiting_s FROM bus_backlog ORDER BY consumer

-- name: durable_commit
-- An ack whose work an effect outside the database will follow waits for the WAL flush
-- (the consumer pool commits without it; see the package's docstring).
SET LOCAL synchronous_commit TO on

-- name: ping
-- The listener's check that its connection is alive.
SELECT 1
