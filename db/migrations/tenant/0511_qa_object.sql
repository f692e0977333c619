-- Runs with search_path set to the tenant's schema (t_<code>).
-- QA scores are a data object (kind qa): the catalogue names qa_scores as the table of the
-- tenant's default QA object "qa_score", so config admins add fields of their own to it
-- through the data-object pages (ALTER TABLE qa_scores ADD COLUMN, as for any object) and
-- checkers fill them in when scoring. Scoring, versions and disputes keep their own columns;
-- the system columns every object table has are added here (created_by is the checker,
-- owner_id the scored agent, both derived so they can never disagree).
ALTER TABLE qa_scores
    ADD COLUMN created_by bigint GENERATED ALWAYS AS (checker_id) STORED,
    ADD COLUMN updated_by bigint,
    ADD COLUMN owner_id   bigint GENERATED ALWAYS AS (NULLIF(agent_id, 0)) STORED,
    ADD COLUMN deleted_at timestamptz;

INSERT INTO data_objects (key, kind, name_en, name_zh, table_name, is_default, edit_columns, save_mode, audit, partitioned)
SELECT 'qa_score', 'qa', 'QA scores', '质检评分', 'qa_scores',
       NOT EXISTS (SELECT 1 FROM data_objects WHERE kind = 'qa' AND is_default), 2, 'many', true, false
WHERE NOT EXISTS (SELECT 1 FROM data_objects WHERE key = 'qa_score' OR table_name = 'qa_scores');
