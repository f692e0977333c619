-- cti: every ctid process caches agents' SIP credentials (HA1s, disabled) and tenants' SIP
-- domains for the registrar. A change made by any writer (admin page, `ctid user` CLI,
-- another ctid process, plain SQL) is announced on channel ctid_sip_directory as soon as
-- it commits, so each process forgets what it cached and an old password stops working at
-- once. Payloads: 'user:<tenant id>:<extension>' and 'tenant:<tenant id>'.
CREATE FUNCTION platform.ctid_sip_user_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' AND OLD.extension IS NOT NULL AND OLD.tenant_id IS NOT NULL THEN
        PERFORM pg_notify('ctid_sip_directory', 'user:' || OLD.tenant_id || ':' || OLD.extension);
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.extension IS NOT NULL AND NEW.tenant_id IS NOT NULL THEN
        PERFORM pg_notify('ctid_sip_directory', 'user:' || NEW.tenant_id || ':' || NEW.extension);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER users_sip_changed AFTER UPDATE OF sip_ha1_md5, sip_ha1_sha256, sip_realm, disabled, extension, tenant_id
    OR INSERT OR DELETE ON platform.users
    FOR EACH ROW EXECUTE FUNCTION platform.ctid_sip_user_changed();

CREATE FUNCTION platform.ctid_sip_tenant_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ctid_sip_directory', 'tenant:' || NEW.id);
    RETURN NULL;
END $$;

CREATE TRIGGER tenants_sip_changed AFTER UPDATE OF sip_domain, status, region ON platform.tenants
    FOR EACH ROW EXECUTE FUNCTION platform.ctid_sip_tenant_changed();
