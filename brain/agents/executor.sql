-- name: signatures
-- Every signature of one proposal, with its message id.
SELECT id, payload::text AS payload FROM agent_messages
 WHERE topic = 'trade.signature' AND causation_id = $1 ORDER BY id

-- name: proposal
SELECT payload::text FROM agent_messages WHERE id = $1 AND topic = 'trade.proposal'

-- name: blocking_halts
SELECT id, level, invariant FROM halts WHERE resumed_at IS NULL AND level >= 2 ORDER BY level DESC, id

-- name: watchdog_age
SELECT extract(epoch FROM clock_timestamp() - updated_at) FROM app_state WHERE key = 'heartbeat:watchdog'

-- name: stale_proposals
-- Proposals that did not collect three signatures in time and have no outcome yet.
SELECT p.id, p.correlation_id, p.payload::text AS payload FROM agent_messages p
 WHERE p.topic = 'trade.proposal' AND p.created_at < clock_timestamp() - make_interval(secs => $1)
   AND p.created_at > clock_timestamp() - interval '1 day'
   AND NOT EXISTS (SELECT 1 FROM agent_messages o WHERE o.topic IN ('cycle.outcome', 'order.placed')
                                                    AND o.correlation_id = p.correlation_id)
 LIMIT 100

-- name: lock_cycle
-- Serialises the decisions on one cycle (the executor's, the expiry's) until commit.
SELECT pg_advisory_xact_lock(hashtext('cycle:' || $1))

-- name: lock_entries
-- Serialises entry decisions across cycles until commit (see the executor).
SELECT pg_advisory_xact_lock(hashtext('entries'))

-- name: cycle_decided
SELECT EXISTS (SELECT 1 FROM agent_messages WHERE topic IN ('cycle.outcome', 'order.placed')
                                             AND correlation_id = $1)
