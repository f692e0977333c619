-- Runs with search_path set to the tenant's schema (t_<code>).
-- The standard templates "work orders" and "QA summary" read the default work-order
-- object's table and the QA scores: both are queryable from the start.
INSERT INTO query_tables (table_name, label_en, label_zh) VALUES
    ('obj_workorder', 'Work orders', '工单'),
    ('qa_scores', 'QA scores', '质检评分')
ON CONFLICT (table_name) DO NOTHING;
