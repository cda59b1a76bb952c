-- name: recent_reports
SELECT id, period_start, status, file_path FROM optimizer_reports ORDER BY id DESC LIMIT 30

-- name: database_now
-- The database's clock when the request is made: the report asked for is one made after it.
SELECT clock_timestamp()

-- name: report_since
-- The report on a day made since the request, the newest first.
SELECT id, status, file_path, body_md FROM optimizer_reports WHERE created_at >= %s AND period_start = %s
 ORDER BY id DESC LIMIT 1

-- name: report_recommendations
SELECT recommendations FROM optimizer_reports WHERE id = %s

-- name: applies_this_week
SELECT count(*) FROM optimizer_applies WHERE skill = %s AND applied_at > now() - interval '7 days'

-- name: last_apply
SELECT max(applied_at) FROM optimizer_applies WHERE skill = %s

-- name: still_cooling
-- Whether a change made at a time is younger than the cooling period (in days), by the
-- database's clock.
SELECT now() - %s::timestamptz < make_interval(days => %s)

-- name: record_apply
INSERT INTO optimizer_applies (report_id, rec_no, skill, applied_by, diff) VALUES (%s, %s, %s, %s, %s)
