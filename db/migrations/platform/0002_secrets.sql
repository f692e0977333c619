-- Server-side secrets shared by every ctid process of this database (e.g. the key that signs
-- short-lived WebSocket tokens), created on first use.
CREATE TABLE platform.secrets (
    name       text PRIMARY KEY,
    value      bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
