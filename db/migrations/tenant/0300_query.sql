-- query: registered query definitions and the allow-list of queryable tables.
-- Runs with search_path set to the tenant's schema: names are unqualified.

-- Tables of this schema that queries may read. The query engine's catalogue is the
-- intersection of this list with the schema's real tables and views (pg_catalog), so an
-- entry for a table that does not exist (yet) allows nothing.
CREATE TABLE query_tables (
    table_name text PRIMARY KEY CHECK (table_name ~ '^[a-z_][a-z0-9_]{0,62}$'),
    label_en   text NOT NULL DEFAULT '',
    label_zh   text NOT NULL DEFAULT '',
    added_at   timestamptz NOT NULL DEFAULT now(),
    added_by   text NOT NULL DEFAULT ''
);
-- The built-in call and agent tables of package cti.
INSERT INTO query_tables (table_name, label_en, label_zh) VALUES
    ('cdrs', 'Calls (CDRs)', '通话记录'),
    ('events', 'Event log', '事件日志'),
    ('agent_state_log', 'Agent state changes', '坐席状态变更'),
    ('agent_states', 'Agent states now', '坐席当前状态'),
    ('not_ready_reasons', 'Not-ready reasons', '示忙原因');

-- One row per saved query; the definition is the JSON of query.Definition.
CREATE TABLE queries (
    key        text PRIMARY KEY CHECK (key ~ '^[a-z][a-z0-9_]{0,62}$'),
    definition jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by text NOT NULL DEFAULT ''
);
