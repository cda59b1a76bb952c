-- name: list_active
SELECT id, raised_at, level, invariant, reason, evidence, raised_by, resumed_at, resumed_by, resume_reason, forced
  FROM halts WHERE resumed_at IS NULL ORDER BY level DESC, id

-- name: list_all
SELECT id, raised_at, level, invariant, reason, evidence, raised_by, resumed_at, resumed_by, resume_reason, forced
  FROM halts ORDER BY id DESC LIMIT 200

-- name: get
SELECT id, raised_at, level, invariant, reason, evidence, raised_by, resumed_at, resumed_by, resume_reason, forced
  FROM halts WHERE id = %s

-- name: raise_manual
INSERT INTO halts (level, invariant, reason, evidence, raised_by) VALUES (%s, 'manual', %s, %s::jsonb, %s)
RETURNING id

-- name: resume
-- Only while still active: two operators resuming at once cannot both succeed.
UPDATE halts SET resumed_at = clock_timestamp(), resumed_by = %s, resume_reason = %s, forced = %s
 WHERE id = %s AND resumed_at IS NULL
RETURNING id

-- name: journal_for_halt
SELECT id, file_path, body_md FROM agent_journal WHERE kind = 'halt' AND (facts->>'halt_id')::bigint = %s
 ORDER BY id LIMIT 1
