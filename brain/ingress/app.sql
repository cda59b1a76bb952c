-- name: lock_client_id
-- Serialises the requests of one endpoint and client id until commit, so that a resend
-- waits for the first one and then finds its receipt.
SELECT pg_advisory_xact_lock(hashtextextended($1 || '/' || $2, 0))

-- name: receipt
-- The response already given to this endpoint and client id, if any.
SELECT response::text FROM ingress_receipts WHERE endpoint = $1 AND client_id = $2

-- name: insert_receipt
INSERT INTO ingress_receipts (endpoint, client_id, response) VALUES ($1, $2, $3::jsonb)

-- name: order_by_client_id
SELECT id, symbol, side FROM orders WHERE client_order_id = $1

-- name: insert_fill
-- A fill the broker reports; one it reported before (the same broker fill id) is not booked twice.
INSERT INTO fills (order_id, client_order_id, broker_fill_id, symbol, side, qty, price, commission, filled_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (broker_fill_id) DO NOTHING

-- name: insert_context_note
INSERT INTO context_notes (source, symbol, title, body) VALUES ($1, $2, $3, $4) RETURNING id

-- name: watchdog_age
-- Seconds since the watchdog's last heartbeat, by the database clock (NULL when it never beat).
SELECT extract(epoch FROM clock_timestamp() - updated_at) FROM app_state WHERE key = 'heartbeat:watchdog'
