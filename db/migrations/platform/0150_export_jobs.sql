-- Background export jobs of the query engine (package query, exportjob.go): their state
-- outlives the process that runs them, so any ctid process on this database shows it, and
-- a job whose process died is marked failed instead of being lost. runner is the second key
-- of the advisory lock its process holds while it lives; file_path is on host.
CREATE TABLE platform.export_jobs (
    id          text PRIMARY KEY,
    tenant_id   bigint NOT NULL REFERENCES platform.tenants ON DELETE CASCADE,
    user_id     bigint NOT NULL REFERENCES platform.users ON DELETE CASCADE,
    query_key   text NOT NULL,
    params      jsonb NOT NULL DEFAULT '{}',
    format      text NOT NULL CHECK (format IN ('csv', 'xlsx')),
    file_name   text NOT NULL,
    status      text NOT NULL CHECK (status IN ('running', 'done', 'failed')),
    rows        bigint NOT NULL DEFAULT 0,
    file_path   text NOT NULL,
    file_size   bigint,
    error       text NOT NULL DEFAULT '',
    host        text NOT NULL,
    runner      bigint NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    CHECK ((status = 'running') = (finished_at IS NULL))
);
-- One running export per user.
CREATE UNIQUE INDEX export_jobs_one_running ON platform.export_jobs (tenant_id, user_id) WHERE status = 'running';
CREATE INDEX export_jobs_running ON platform.export_jobs (runner) WHERE status = 'running';
CREATE INDEX export_jobs_finished ON platform.export_jobs (finished_at) WHERE status <> 'running';
