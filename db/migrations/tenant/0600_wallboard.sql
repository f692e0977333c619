-- wallboard: read-only token URLs of TV wall displays (docs/wallboard.md). Only the SHA-256
-- of a token is kept; revoking sets revoked_at (the row stays: who made and revoked it).
CREATE TABLE wallboard_tokens (
    id         bigserial PRIMARY KEY,
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    token_hash bytea NOT NULL UNIQUE,
    created_by bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_by bigint,
    revoked_at timestamptz
);
