-- name: recent_entries
-- The entries filed within ten minutes of the newest one, with their markdown. The kernel
-- writes dirty file data back within about half a minute, so entries older than that reached
-- the disk before any crash that ended the last run.
SELECT file_path, body_md FROM agent_journal
 WHERE file_path IS NOT NULL
   AND created_at > (SELECT max(created_at) FROM agent_journal) - interval '10 minutes'
