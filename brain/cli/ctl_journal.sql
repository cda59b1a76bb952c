-- name: entries
-- Journal entries, newest first, filtered by whichever of day, symbol, outcome and kind are
-- given (NULL for any).
SELECT id, created_at, kind, symbol, outcome, title, file_path FROM agent_journal
 WHERE (%(day)s::date IS NULL OR created_at >= %(day)s::date AND created_at < %(day)s::date + 1)
   AND (%(symbol)s::text IS NULL OR symbol = %(symbol)s::text)
   AND (%(outcome)s::text IS NULL OR outcome = %(outcome)s::text)
   AND (%(kind)s::text IS NULL OR kind = %(kind)s::text)
 ORDER BY id DESC LIMIT %(limit)s

-- name: entry
SELECT body_md, file_path FROM agent_journal WHERE id = %s
