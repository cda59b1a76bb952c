-- name: insert_report
-- One optimizer run's report; its id names the report for `brainctl optimize apply`.
INSERT INTO optimizer_reports (period_start, period_end, status, file_path, body_md, stats, recommendations)
VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb) RETURNING id

-- name: any_report_made
-- Whether a report other than a failed one exists: the first one is the baseline.
SELECT EXISTS (SELECT 1 FROM optimizer_reports WHERE status <> 'failed')

-- name: report_exists_for_day
-- The nightly run asks for yesterday's report only when there is none yet.
SELECT EXISTS (SELECT 1 FROM optimizer_reports WHERE period_start = $1)

-- name: report_recommendations
SELECT recommendations FROM optimizer_reports WHERE id = %s

-- name: unreported_experiments
-- Finished shadow experiments that no report has shown yet.
SELECT id, target, variant, status, result, error FROM shadow_experiments
 WHERE reported_in IS NULL AND status <> 'running' ORDER BY id

-- name: mark_experiments_reported
UPDATE shadow_experiments SET reported_in = $1 WHERE id = any($2::bigint[])

-- name: insert_experiment
INSERT INTO shadow_experiments (report_id, rec_no, target, variant, window_spec, status, requested_by)
VALUES (%s, %s, %s, %s::jsonb, %s::jsonb, 'running', %s) RETURNING id

-- name: fail_experiment
UPDATE shadow_experiments SET status = 'failed', finished_at = now(), error = %s WHERE id = %s

-- name: finish_experiment
UPDATE shadow_experiments SET status = 'done', finished_at = now(), result = %s::jsonb, file_path = %s
 WHERE id = %s
