-- The platform schema: tenants and the accounts that sign in to them.
-- Tenant data lives in one schema per tenant (t_<code>), never here.
CREATE SCHEMA IF NOT EXISTS platform;

CREATE TABLE platform.tenants (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code        text NOT NULL UNIQUE CHECK (code ~ '^[a-z][a-z0-9_]{1,30}$'),
    name        text NOT NULL CHECK (name <> ''),
    region      text NOT NULL CHECK (region ~ '^[A-Z]{2}$'),
    time_zone   text NOT NULL,
    status      text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    schema_name text NOT NULL UNIQUE,
    reader_role text NOT NULL UNIQUE,
    reader_password text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE platform.teams (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id  bigint NOT NULL REFERENCES platform.tenants ON DELETE CASCADE,
    name       text NOT NULL CHECK (name <> ''),
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name)
);

-- tenant_id NULL marks a platform operator, who belongs to no tenant.
CREATE TABLE platform.users (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id     bigint REFERENCES platform.tenants ON DELETE CASCADE,
    username      text NOT NULL CHECK (username ~ '^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$'),
    display_name  text NOT NULL DEFAULT '',
    password_hash text NOT NULL,
    roles         text[] NOT NULL CHECK (cardinality(roles) > 0),
    team_id       bigint REFERENCES platform.teams ON DELETE SET NULL,
    extension     text CHECK (extension ~ '^[0-9]{2,8}$'),
    locale        text NOT NULL DEFAULT '',
    disabled      boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_tenant_username ON platform.users (coalesce(tenant_id, 0), lower(username));
CREATE UNIQUE INDEX users_tenant_extension ON platform.users (tenant_id, extension) WHERE extension IS NOT NULL;

-- Session and API tokens are stored as SHA-256 hashes: a copy of this table opens no account.
CREATE TABLE platform.sessions (
    token_hash   bytea PRIMARY KEY,
    user_id      bigint NOT NULL REFERENCES platform.users ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    remote_addr  text NOT NULL DEFAULT '',
    user_agent   text NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user ON platform.sessions (user_id);
CREATE INDEX sessions_expires ON platform.sessions (expires_at);

CREATE TABLE platform.api_tokens (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id      bigint NOT NULL REFERENCES platform.users ON DELETE CASCADE,
    name         text NOT NULL CHECK (name <> ''),
    token_hash   bytea NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    last_used_at timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX api_tokens_user ON platform.api_tokens (user_id);

-- Failed logins per key ('user:<tenant>/<name>' or 'addr:<ip>') for slowing down guessing.
CREATE TABLE platform.login_failures (
    key          text PRIMARY KEY,
    failures     int NOT NULL,
    first_at     timestamptz NOT NULL,
    locked_until timestamptz
);

CREATE TABLE platform.audit_log (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id bigint REFERENCES platform.tenants ON DELETE SET NULL,
    actor_id  bigint REFERENCES platform.users ON DELETE SET NULL,
    actor     text NOT NULL,
    action    text NOT NULL,
    target    text NOT NULL DEFAULT '',
    detail    jsonb NOT NULL DEFAULT '{}',
    at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_tenant_at ON platform.audit_log (tenant_id, at);

-- Report queries run as per-tenant reader roles; they must not create temporary tables
-- (allowed even in READ ONLY transactions) nor see the platform schema.
DO $$ BEGIN
    EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
END $$;
REVOKE ALL ON SCHEMA platform FROM PUBLIC;
