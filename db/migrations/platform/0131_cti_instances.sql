-- cti: several ctid processes may share one database. Each registers here when it starts
-- (ids are never reused) and holds the PostgreSQL session advisory lock (1668573540, id)
-- while it lives; the calls it handles record the id in their call.offered event. A
-- registered process whose lock is free is dead (its session ended: exit, kill, crash,
-- lost host): the other processes close the calls it left open as interrupted, then
-- delete its row. A process that stops cleanly sets stopped_at as its last act, so the
-- next start need not wait for the server to notice its session ended.
CREATE TABLE platform.ctid_instances (
    id         integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    host       text NOT NULL,
    pid        integer NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    stopped_at timestamptz
);
