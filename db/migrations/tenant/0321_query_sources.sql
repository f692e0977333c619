-- Runs with search_path set to the tenant's schema (t_<code>).
-- External read-only PostgreSQL data sources of the query engine. The connection URL is
-- kept sealed (AES-256-GCM under the platform secret "query_sources", which the tenant's
-- reader role cannot read), and shown back only with its password masked.
CREATE TABLE query_sources (
    key                  text PRIMARY KEY CHECK (key ~ '^[a-z][a-z0-9_]{0,62}$'),
    name                 text NOT NULL CHECK (name <> ''),
    url_sealed           bytea NOT NULL,
    url_shown            text NOT NULL,
    schema_name          text NOT NULL DEFAULT 'public',
    max_conns            int NOT NULL DEFAULT 2 CHECK (max_conns BETWEEN 1 AND 10),
    statement_timeout_ms int NOT NULL DEFAULT 15000 CHECK (statement_timeout_ms BETWEEN 100 AND 600000),
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    updated_by           text NOT NULL DEFAULT ''
);
