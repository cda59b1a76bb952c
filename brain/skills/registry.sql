-- name: record_version
-- A skill text the registry loaded; a version already recorded is not recorded again.
INSERT INTO skill_versions (name, content_hash, text) VALUES ($1, $2, $3) ON CONFLICT (name, content_hash) DO NOTHING

-- name: record_rejection
-- A skill file the registry refused, and why.
INSERT INTO skill_rejections (name, path, error) VALUES ($1, $2, $3)
