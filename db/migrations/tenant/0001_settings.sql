-- Runs with search_path set to the tenant's schema (t_<code>): names are unqualified.
-- Tenant-wide settings (screen-pop rule, defaults) as small JSON documents.
CREATE TABLE settings (
    key        text PRIMARY KEY CHECK (key ~ '^[a-z][a-z0-9_.]{0,63}$'),
    value      jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by text NOT NULL DEFAULT ''
);
