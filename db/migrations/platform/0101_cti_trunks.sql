-- cti: SIP trunks and PBX peers. They are known by source address before ctid knows the
-- tenant, so they live in the platform schema, each owned by one tenant.
CREATE TABLE platform.sip_trunks (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id    bigint NOT NULL REFERENCES platform.tenants ON DELETE CASCADE,
    name         text NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,39}$'),
    source       cidr NOT NULL,              -- addresses INVITEs from this trunk come from
    outbound_uri text NOT NULL DEFAULT '',   -- where agents' outbound calls go (sip:host:port), '' = inbound only
    caller_id    text NOT NULL DEFAULT '',   -- caller number presented on outbound calls
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name)
);
CREATE INDEX sip_trunks_source ON platform.sip_trunks USING gist (source inet_ops);
