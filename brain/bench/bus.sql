-- name: unflushed_session
-- The unflushed ceiling: commits that do not wait for the WAL flush.
SET synchronous_commit TO off

-- name: bench_in_flight
-- What the bench consumer still has pending or in flight (read through the partial indexes).
SELECT count(*) FROM agent_deliveries WHERE consumer = 'bench' AND state IN ('pending', 'working')
