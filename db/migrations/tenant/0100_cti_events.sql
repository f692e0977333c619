-- cti: the tenant's event log, agent states and call detail records (CDRs).
-- Runs with search_path set to the tenant's schema: names are unqualified.
-- docs/events.md describes every column and event type.

-- The append-only event log. seq is the tenant's own sequence: gapless and in commit order,
-- because every batch takes its numbers from event_counter inside the transaction that
-- writes it (the row lock orders batches of concurrent writers).
CREATE TABLE events (
    seq      bigint PRIMARY KEY,
    at       timestamptz NOT NULL,
    type     text NOT NULL CHECK (type ~ '^[a-z]+\.[a-z_]+$'),
    call_id  text NOT NULL DEFAULT '',
    agent_id bigint,                       -- platform.users.id of the agent, when one is involved
    queue    text NOT NULL DEFAULT '',
    data     jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX events_call ON events (call_id, seq) WHERE call_id <> '';
CREATE INDEX events_agent ON events (agent_id, seq) WHERE agent_id IS NOT NULL;
CREATE INDEX events_at ON events (at);

CREATE TABLE event_counter (
    one      boolean PRIMARY KEY DEFAULT true CHECK (one),
    last_seq bigint NOT NULL
);
INSERT INTO event_counter (one, last_seq) VALUES (true, 0);

CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END $$;
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

-- Reasons an agent gives for Not ready (a code table; 'missed' and 'restart' are set by ctid).
CREATE TABLE not_ready_reasons (
    code     text PRIMARY KEY CHECK (code ~ '^[a-z][a-z0-9_]{0,31}$'),
    label_en text NOT NULL CHECK (label_en <> ''),
    label_zh text NOT NULL CHECK (label_zh <> ''),
    system   boolean NOT NULL DEFAULT false  -- set by ctid, not chosen by agents
);
INSERT INTO not_ready_reasons (code, label_en, label_zh, system) VALUES
    ('break', 'Break', '小休', false),
    ('lunch', 'Lunch', '用餐', false),
    ('meeting', 'Meeting', '会议', false),
    ('training', 'Training', '培训', false),
    ('missed', 'Missed calls', '未接来电', true),
    ('restart', 'ctid restarted', '系统重启', true);

-- Every agent's current state, kept with the transition log in the same transaction.
CREATE TABLE agent_states (
    agent_id bigint PRIMARY KEY,
    state    text NOT NULL CHECK (state IN ('logged_out', 'ready', 'not_ready', 'reserved', 'ringing', 'on_call', 'wrap_up')),
    reason   text NOT NULL DEFAULT '',
    call_id  text NOT NULL DEFAULT '',
    since    timestamptz NOT NULL,
    seq      bigint NOT NULL
);

-- One row per agent state transition (its agent.state event has the same seq).
CREATE TABLE agent_state_log (
    seq        bigint PRIMARY KEY,
    agent_id   bigint NOT NULL,
    at         timestamptz NOT NULL,
    from_state text NOT NULL,
    to_state   text NOT NULL,
    reason     text NOT NULL DEFAULT '',
    call_id    text NOT NULL DEFAULT '',
    actor      text NOT NULL DEFAULT ''    -- 'system', 'agent', or 'user:<id>' of who forced it
);
CREATE INDEX agent_state_log_agent_at ON agent_state_log (agent_id, at);
CREATE TRIGGER agent_state_log_append_only BEFORE UPDATE OR DELETE ON agent_state_log
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

-- One CDR per call, partitioned by month of offered_at. ctid creates the partitions ahead
-- (cti.EnsurePartitions); the default partition keeps a row whose month is missing, so no
-- CDR is ever refused.
CREATE TABLE cdrs (
    call_id         text NOT NULL CHECK (call_id <> ''),
    offered_at      timestamptz NOT NULL,
    direction       text NOT NULL CHECK (direction IN ('inbound', 'outbound', 'internal')),
    source          text NOT NULL DEFAULT 'sip' CHECK (source IN ('sip', 'api')),
    caller_raw      text NOT NULL DEFAULT '',
    caller_e164     text NOT NULL DEFAULT '',
    callee_raw      text NOT NULL DEFAULT '',
    callee_e164     text NOT NULL DEFAULT '',
    did             text NOT NULL DEFAULT '',
    queue           text NOT NULL DEFAULT '',
    agent_id        bigint,
    agent_extension text NOT NULL DEFAULT '',
    queued_at       timestamptz,
    ringing_at      timestamptz,
    answered_at     timestamptz,
    ended_at        timestamptz NOT NULL,
    wait_seconds    numeric(12, 3) NOT NULL DEFAULT 0 CHECK (wait_seconds >= 0),
    talk_seconds    numeric(12, 3) NOT NULL DEFAULT 0 CHECK (talk_seconds >= 0),
    result          text NOT NULL CHECK (result IN ('answered', 'abandoned', 'timeout', 'busy', 'no_answer', 'failed', 'rejected')),
    hangup_by       text NOT NULL DEFAULT '' CHECK (hangup_by IN ('', 'caller', 'agent', 'system')),
    sip_cause       int NOT NULL DEFAULT 0,
    sip_call_ids    text[] NOT NULL DEFAULT '{}',
    seq             bigint NOT NULL,           -- the call.ended event written with it
    PRIMARY KEY (call_id, offered_at)
) PARTITION BY RANGE (offered_at);
CREATE TABLE cdrs_default PARTITION OF cdrs DEFAULT;
CREATE INDEX cdrs_offered ON cdrs (offered_at);
CREATE INDEX cdrs_agent ON cdrs (agent_id, offered_at) WHERE agent_id IS NOT NULL;
