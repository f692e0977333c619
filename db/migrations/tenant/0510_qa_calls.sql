-- Runs with search_path set to the tenant's schema (t_<code>).
-- QA of bare calls: a checker may score a call (CDR) that has no work order. Such a score
-- has object '' and record_id 0 and names its call; a work order's score names the work
-- order's call too, when it has one. One score per work order, and one per bare call,
-- outside calibration.
ALTER TABLE qa_scores ADD COLUMN call_id text NOT NULL DEFAULT '';
ALTER TABLE qa_scores ADD CONSTRAINT qa_scores_subject
    CHECK ((object = '') = (record_id = 0) AND (object <> '' OR call_id <> ''));
DROP INDEX qa_scores_one;
CREATE UNIQUE INDEX qa_scores_one ON qa_scores (object, record_id) WHERE NOT calibration AND object <> '';
CREATE UNIQUE INDEX qa_scores_one_call ON qa_scores (call_id) WHERE NOT calibration AND object = '';
CREATE INDEX qa_scores_call ON qa_scores (call_id) WHERE call_id <> '';
