-- cti: calls reported by external PBXs through POST /api/v1/cti/events (newCall, answer,
-- hangup). api_call_events makes each (call id, event) count once: a retry changes nothing.
CREATE TABLE api_calls (
    call_id         text PRIMARY KEY,
    offered_at      timestamptz NOT NULL,
    direction       text NOT NULL CHECK (direction IN ('inbound', 'outbound', 'internal')),
    caller_raw      text NOT NULL DEFAULT '',
    caller_e164     text NOT NULL DEFAULT '',
    callee_raw      text NOT NULL DEFAULT '',
    callee_e164     text NOT NULL DEFAULT '',
    queue           text NOT NULL DEFAULT '',
    agent_id        bigint,
    agent_extension text NOT NULL DEFAULT '',
    answered_at     timestamptz,
    ended_at        timestamptz
);

CREATE TABLE api_call_events (
    call_id     text NOT NULL,
    event       text NOT NULL CHECK (event IN ('newCall', 'answer', 'hangup')),
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (call_id, event)
);
