-- name: has_version_table
-- Whether alembic has ever stamped this database (an empty database has no alembic_version).
SELECT to_regclass('alembic_version') IS NOT NULL

-- name: version
SELECT version_num FROM alembic_version
