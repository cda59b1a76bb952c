-- The claim as revision 0005 defined it: take in everything as pending, then claim.
CREATE OR REPLACE FUNCTION bus_claim(p_consumer text, p_limit integer, p_owner uuid, p_lease_s double precision)
RETURNS TABLE (message_id bigint, attempts integer, topic text, from_agent text, to_agent text,
               correlation_id text, causation_id bigint, payload text, created_at timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
    now_snap pg_snapshot := pg_current_snapshot();
    prev     pg_snapshot;
BEGIN
    -- Take in what committed since the last look (one take-in at a time per consumer; a
    -- worker that finds it busy just claims). See the initial revision for the tx range.
    SELECT c.seen INTO prev FROM bus_consumers c WHERE c.consumer = p_consumer FOR UPDATE SKIP LOCKED;
    IF FOUND THEN
        INSERT INTO agent_deliveries (message_id, consumer)
        SELECT m.id, p_consumer
          FROM agent_messages m
         WHERE m.tx >= pg_snapshot_xmin(prev) AND m.tx < pg_snapshot_xmax(now_snap)
           AND NOT pg_visible_in_snapshot(m.tx, prev)
           AND pg_visible_in_snapshot(m.tx, now_snap)
           AND m.topic IN (SELECT s.topic FROM bus_subscriptions s WHERE s.consumer = p_consumer)
           AND (m.to_agent IS NULL OR m.to_agent = p_consumer)
         ORDER BY m.id
        ON CONFLICT DO NOTHING;
        UPDATE bus_consumers SET seen = now_snap, taken_at = clock_timestamp()
         WHERE consumer = p_consumer;
    END IF;

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
END
$$;
