-- screenpop: the pop payload of each call, built once when the call is offered and kept for
-- replay (a console that reconnects or reloads mid-call gets the same pop), and the customer an
-- agent picked for a caller's number when several matched (offered first next time).
CREATE TABLE pops (
    call_id  text PRIMARY KEY,
    built_at timestamptz NOT NULL DEFAULT now(),
    payload  jsonb NOT NULL
);

CREATE TABLE pop_choices (
    caller_key text PRIMARY KEY,   -- the caller's E.164 number, or its digits when not valid
    object     text NOT NULL,
    record_id  bigint NOT NULL,
    chosen_by  bigint NOT NULL,    -- platform.users.id of the agent who picked
    chosen_at  timestamptz NOT NULL DEFAULT now()
);

-- Delivery and acknowledgement of pop messages, per console connection's user.
CREATE TABLE pop_deliveries (
    seq          bigint NOT NULL,
    agent_id     bigint NOT NULL,
    delivered_at timestamptz NOT NULL,
    acked_at     timestamptz,
    PRIMARY KEY (agent_id, seq)
);

-- "Last calls of this number" in every pop reads this index.
CREATE INDEX cdrs_caller ON cdrs (caller_e164, offered_at) WHERE caller_e164 <> '';
