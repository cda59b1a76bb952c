-- A claim took its snapshot when it began, before it held the consumer's cursor. Held up
-- meanwhile (its claim of waiting work blocked), it could write back a cursor older than the
-- one another worker had just committed. The snapshot is now taken under the cursor lock, so
-- the cursor only moves forward.
CREATE OR REPLACE FUNCTION bus_claim(p_consumer text, p_limit integer, p_owner uuid, p_lease_s double precision)
RETURNS TABLE (message_id bigint, attempts integer, topic text, from_agent text, to_agent text,
               correlation_id text, causation_id bigint, payload text, created_at timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
    now_snap pg_snapshot;
    prev     pg_snapshot;
    taken    integer;
BEGIN
    -- First what already waits (retries come due, leases reclaimed, what an earlier take-in
    -- left over), oldest first.
    RETURN QUERY
    WITH ready AS (
        -- SKIP LOCKED lets competing workers of the same consumer take disjoint rows
        SELECT d.message_id FROM agent_deliveries d
         WHERE d.consumer = p_consumer AND d.state = 'pending' AND d.available_at <= clock_timestamp()
         ORDER BY d.message_id
         LIMIT p_limit
         FOR UPDATE SKIP LOCKED
    ), claimed AS (
        -- the lease names this worker, so only it can ack or retry the delivery
        UPDATE agent_deliveries d
           SET state = 'working', attempts = d.attempts + 1, lease_owner = p_owner,
               lease_until = clock_timestamp() + make_interval(secs => p_lease_s)
          FROM ready
         WHERE d.consumer = p_consumer AND d.message_id = ready.message_id
        RETURNING d.message_id, d.attempts
    )
    SELECT c.message_id, c.attempts, m.topic, m.from_agent, m.to_agent, m.correlation_id,
           m.causation_id, m.payload::text, m.created_at
      FROM claimed c JOIN agent_messages m ON m.id = c.message_id
     ORDER BY c.message_id;
    GET DIAGNOSTICS taken = ROW_COUNT;

    -- Then take in what committed since the last look (one take-in at a time per consumer;
    -- a worker that finds it busy has claimed above). See the initial revision for the tx
    -- range. The first of them, up to the batch, are this worker's at once.
    SELECT c.seen INTO prev FROM bus_consumers c WHERE c.consumer = p_consumer FOR UPDATE SKIP LOCKED;
    IF FOUND THEN
        -- Taken now, holding the cursor: a snapshot taken before the lock could be older than
        -- the cursor a worker that held it just wrote, and writing it back would move the
        -- cursor back (what was taken in since would count as untaken, and its deliveries
        -- would use up this claim's batch when met again).
        now_snap := pg_current_snapshot();
        RETURN QUERY
        WITH fresh AS (
            SELECT m.id, m.topic, m.from_agent, m.to_agent, m.correlation_id, m.causation_id,
                   m.payload, m.created_at, row_number() OVER (ORDER BY m.id) <= p_limit - taken AS mine
              FROM agent_messages m
             WHERE m.tx >= pg_snapshot_xmin(prev) AND m.tx < pg_snapshot_xmax(now_snap)
               AND NOT pg_visible_in_snapshot(m.tx, prev)
               AND pg_visible_in_snapshot(m.tx, now_snap)
               AND m.topic IN (SELECT s.topic FROM bus_subscriptions s WHERE s.consumer = p_consumer)
               AND (m.to_agent IS NULL OR m.to_agent = p_consumer)
        ), taken_in AS (
            INSERT INTO agent_deliveries (message_id, consumer, state, attempts, lease_owner, lease_until)
            SELECT f.id, p_consumer,
                   CASE WHEN f.mine THEN 'working' ELSE 'pending' END,
                   CASE WHEN f.mine THEN 1 ELSE 0 END,
                   CASE WHEN f.mine THEN p_owner END,
                   CASE WHEN f.mine THEN clock_timestamp() + make_interval(secs => p_lease_s) END
              FROM fresh f
             ORDER BY f.id
            ON CONFLICT DO NOTHING
            RETURNING agent_deliveries.message_id, agent_deliveries.state
        )
        SELECT f.id, 1, f.topic, f.from_agent, f.to_agent, f.correlation_id, f.causation_id,
               f.payload::text, f.created_at
          FROM fresh f JOIN taken_in t ON t.message_id = f.id
         WHERE t.state = 'working'
         ORDER BY f.id;
        UPDATE bus_consumers SET seen = now_snap, taken_at = clock_timestamp()
         WHERE consumer = p_consumer;
    END IF;
END
$$;
