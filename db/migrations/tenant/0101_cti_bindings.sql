-- cti: registered contacts of the tenant's agent phones (REGISTER bindings), kept across
-- restarts of ctid.
CREATE TABLE sip_bindings (
    extension  text NOT NULL,
    contact    text NOT NULL,             -- the Contact URI the phone registered
    agent_id   bigint NOT NULL,           -- platform.users.id
    source     text NOT NULL,             -- transport and address the REGISTER came from, e.g. udp:192.0.2.1:5060
    call_id    text NOT NULL,
    cseq       bigint NOT NULL,
    expires_at timestamptz NOT NULL,
    user_agent text NOT NULL DEFAULT '',
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (extension, contact)
);
CREATE INDEX sip_bindings_expires ON sip_bindings (expires_at);
