-- cti: digest credentials of a trunk. A trunk with a username must answer 407 Proxy-
-- Authenticate on its INVITEs besides coming from its source network. Only the HA1s
-- H(username:realm:password) are kept (MD5 and SHA-256), for the realm they were made for
-- (the tenant's SIP domain when the password was set).
ALTER TABLE platform.sip_trunks
    ADD COLUMN auth_username text CHECK (auth_username ~ '^[A-Za-z0-9._+-]{1,64}$'),
    ADD COLUMN auth_ha1_md5 text CHECK (auth_ha1_md5 ~ '^[0-9a-f]{32}$'),
    ADD COLUMN auth_ha1_sha256 text CHECK (auth_ha1_sha256 ~ '^[0-9a-f]{64}$'),
    ADD COLUMN auth_realm text,
    ADD CONSTRAINT sip_trunks_auth_complete CHECK (
        (auth_username IS NULL) = (auth_ha1_md5 IS NULL) AND (auth_username IS NULL) = (auth_ha1_sha256 IS NULL)
        AND (auth_username IS NULL) = (auth_realm IS NULL));
