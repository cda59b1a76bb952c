-- name: skill_versions
-- Every version of a skill the brain loaded, oldest first.
SELECT content_hash, loaded_at, length(text), text FROM skill_versions WHERE name = %s ORDER BY loaded_at, id

-- name: skill_rejections
-- The last five times a skill's file was refused, newest first.
SELECT rejected_at, error FROM skill_rejections WHERE name = %s ORDER BY id DESC LIMIT 5
