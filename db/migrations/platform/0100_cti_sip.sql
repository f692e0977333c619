-- cti: what SIP needs of tenants and users.
-- A tenant's SIP domain is the digest realm of its phones and the host part of its SIP URIs.
ALTER TABLE platform.tenants ADD COLUMN sip_domain text
    CHECK (sip_domain ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$');
CREATE UNIQUE INDEX tenants_sip_domain ON platform.tenants (sip_domain) WHERE sip_domain IS NOT NULL;

-- An agent's SIP password, kept only as the digest HA1 = H(extension:realm:password) for MD5
-- and SHA-256 (RFC 8760). sip_realm is the realm the HA1s were made for: after the tenant's
-- SIP domain changes they no longer match and the password must be set again.
ALTER TABLE platform.users ADD COLUMN sip_ha1_md5 text CHECK (sip_ha1_md5 ~ '^[0-9a-f]{32}$'),
    ADD COLUMN sip_ha1_sha256 text CHECK (sip_ha1_sha256 ~ '^[0-9a-f]{64}$'),
    ADD COLUMN sip_realm text;
