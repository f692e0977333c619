-- cti: the tenant's numbers (DIDs), queues and queue members. Changes take effect on the
-- next call: ctid reads them per call.
CREATE TABLE queues (
    name             text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,39}$'),
    strategy         text NOT NULL DEFAULT 'longest_idle' CHECK (strategy IN ('longest_idle', 'round_robin', 'ring_all')),
    ring_timeout_s   int NOT NULL DEFAULT 15 CHECK (ring_timeout_s BETWEEN 1 AND 300),
    max_wait_s       int NOT NULL DEFAULT 300 CHECK (max_wait_s BETWEEN 1 AND 86400),
    overflow         text NOT NULL DEFAULT '' CHECK (overflow ~ '^(|queue:[a-z0-9][a-z0-9_-]{0,39}|ext:[0-9]{2,8})$'), -- '' = 480
    wrapup_s         int NOT NULL DEFAULT 0 CHECK (wrapup_s BETWEEN 0 AND 3600),
    service_level_s  int NOT NULL DEFAULT 20 CHECK (service_level_s BETWEEN 1 AND 3600),
    missed_limit     int NOT NULL DEFAULT 0 CHECK (missed_limit >= 0), -- 0 = the rule is off
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE queue_members (
    queue    text NOT NULL REFERENCES queues ON DELETE CASCADE ON UPDATE CASCADE,
    agent_id bigint NOT NULL,               -- platform.users.id
    level    int NOT NULL DEFAULT 1 CHECK (level BETWEEN 1 AND 9), -- 1 is offered first
    PRIMARY KEY (queue, agent_id)
);

CREATE TABLE dids (
    number    text PRIMARY KEY CHECK (number ~ '^\+?[0-9]{2,20}$'),
    queue     text REFERENCES queues ON DELETE RESTRICT ON UPDATE CASCADE,
    extension text CHECK (extension ~ '^[0-9]{2,8}$'),
    CHECK ((queue IS NULL) <> (extension IS NULL))
);
