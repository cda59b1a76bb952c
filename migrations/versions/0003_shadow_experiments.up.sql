-- A variant of one recommendation, replayed through the same agents over the same history as
-- the live configuration, judged on a held-out period. The next optimizer report shows it.
CREATE TABLE shadow_experiments (
    id            bigserial PRIMARY KEY,
    report_id     bigint NOT NULL REFERENCES optimizer_reports (id),
    rec_no        integer NOT NULL,
    target        text NOT NULL,
    variant       jsonb NOT NULL,                 -- {"setting": ..., "value": ...} or {"skill": ..., "edit": ...}
    window_spec   jsonb NOT NULL,                 -- symbols, start, split, end
    status        text NOT NULL CHECK (status IN ('running', 'done', 'failed')),
    requested_by  text NOT NULL,
    started_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    result        jsonb,
    error         text,
    file_path     text,
    reported_in   bigint REFERENCES optimizer_reports (id)
);
CREATE INDEX shadow_unreported ON shadow_experiments (id) WHERE reported_in IS NULL;

GRANT SELECT ON shadow_experiments TO brain_app, brain_watchdog, brain_operator;
GRANT UPDATE (reported_in) ON shadow_experiments TO brain_app;
