-- Runs with search_path set to the tenant's schema (t_<code>).
-- QA (质检): forms defined by config admins, versioned (a form with scores is never edited in
-- place: an edit makes a new version, and old scores keep theirs); scores of work orders by
-- QA checkers with their item answers; the score's history (acknowledge, dispute, uphold,
-- re-score).
CREATE TABLE qa_forms (
    key             text PRIMARY KEY CHECK (key ~ '^[a-z][a-z0-9_]{1,30}$'),
    current_version int NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE qa_form_versions (
    form_key   text NOT NULL REFERENCES qa_forms,
    version    int NOT NULL CHECK (version > 0),
    definition jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by text NOT NULL DEFAULT '',
    PRIMARY KEY (form_key, version)
);

CREATE TABLE qa_scores (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    form_key      text NOT NULL,
    form_version  int NOT NULL,
    object        text NOT NULL,          -- the work-order object's key
    record_id     bigint NOT NULL,        -- the work order
    agent_id      bigint NOT NULL DEFAULT 0, -- the work order's agent when scored
    team_id       bigint NOT NULL DEFAULT 0,
    checker_id    bigint NOT NULL,
    checker       text NOT NULL,
    score         numeric(4,1) NOT NULL CHECK (score BETWEEN 0 AND 100),
    band          text NOT NULL,
    failed        boolean NOT NULL,
    critical_fail text NOT NULL DEFAULT '',
    answers       jsonb NOT NULL,
    comment       text NOT NULL DEFAULT '',
    calibration   boolean NOT NULL DEFAULT false, -- one of several checkers' scores of one work order
    status        text NOT NULL DEFAULT 'scored'
                  CHECK (status IN ('scored', 'acknowledged', 'disputed', 'upheld', 'rescored')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (form_key, form_version) REFERENCES qa_form_versions
);
-- One scoring per work order outside calibration: the queue lists work orders without one.
CREATE UNIQUE INDEX qa_scores_one ON qa_scores (object, record_id) WHERE NOT calibration;
CREATE INDEX qa_scores_record ON qa_scores (object, record_id);
CREATE INDEX qa_scores_agent ON qa_scores (agent_id, created_at);
CREATE INDEX qa_scores_team ON qa_scores (team_id, created_at);
CREATE INDEX qa_scores_created ON qa_scores (created_at);

CREATE TABLE qa_score_events (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    score_id  bigint NOT NULL REFERENCES qa_scores,
    action    text NOT NULL CHECK (action IN ('score', 'acknowledge', 'dispute', 'uphold', 'rescore')),
    actor_id  bigint NOT NULL,
    actor     text NOT NULL,
    comment   text NOT NULL DEFAULT '',
    old_score numeric(4,1),
    new_score numeric(4,1),
    at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX qa_score_events_score ON qa_score_events (score_id, id);
