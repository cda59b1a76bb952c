-- name: insert_entry
-- An entry's row (asyncpg); facts is JSON text.
INSERT INTO agent_journal (created_at, kind, correlation_id, symbol, outcome, title, body_md, facts, file_path)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9) RETURNING id

-- name: insert_entry_sync
-- The same for psycopg.
INSERT INTO agent_journal (created_at, kind, correlation_id, symbol, outcome, title, body_md, facts, file_path)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s) RETURNING id
