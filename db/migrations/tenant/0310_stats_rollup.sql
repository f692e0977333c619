-- query: statistics rollups. Agent and queue statistics read these, not raw CDRs.
-- Runs with search_path set to the tenant's schema: names are unqualified.
-- docs/metrics.md describes every column; query/metrics.go declares how each is counted and
-- query/rollup.go keeps them current from the event log (CDRs of call.ended events and the
-- agent_state_log rows, both found by the event's seq).

-- Finding a call.ended event's CDR by its seq.
CREATE INDEX cdrs_seq ON cdrs (seq);

-- How far the rollups have applied the event log. Updated in the same transaction as the
-- rollup rows, so a crash neither loses nor counts an event twice. time_zone is the tenant's
-- zone the day buckets were cut in (set on the first run; a rebuild takes the current one).
CREATE TABLE rollup_cursor (
    one        boolean PRIMARY KEY DEFAULT true CHECK (one),
    last_seq   bigint NOT NULL,
    time_zone  text NOT NULL,
    rebuilt_at timestamptz
);
INSERT INTO rollup_cursor (one, last_seq, time_zone) VALUES (true, 0, '');

-- Per agent per bucket (15 minutes from UTC quarter hours, or the tenant's day). reason is ''
-- except on rows of not-ready time, which carry the reason given.
CREATE TABLE agent_rollup_15m (
    bucket            timestamptz NOT NULL,
    agent_id          bigint NOT NULL,
    reason            text NOT NULL DEFAULT '',
    offered integer NOT NULL DEFAULT 0,
    answered integer NOT NULL DEFAULT 0,
    missed integer NOT NULL DEFAULT 0,
    abandoned_ringing integer NOT NULL DEFAULT 0,
    outbound integer NOT NULL DEFAULT 0,
    handled integer NOT NULL DEFAULT 0,
    talk_seconds      numeric(18, 6) NOT NULL DEFAULT 0,
    wrap_count integer NOT NULL DEFAULT 0,
    wrap_seconds      numeric(18, 6) NOT NULL DEFAULT 0,
    login_seconds     numeric(18, 6) NOT NULL DEFAULT 0,
    ready_seconds     numeric(18, 6) NOT NULL DEFAULT 0,
    not_ready_seconds numeric(18, 6) NOT NULL DEFAULT 0,
    busy_seconds      numeric(18, 6) NOT NULL DEFAULT 0,
    PRIMARY KEY (agent_id, bucket, reason)
);
CREATE TABLE agent_rollup_day (LIKE agent_rollup_15m INCLUDING ALL);
CREATE INDEX agent_rollup_15m_bucket ON agent_rollup_15m (bucket);
CREATE INDEX agent_rollup_day_bucket ON agent_rollup_day (bucket);

-- Per queue per bucket: inbound calls of the queue.
CREATE TABLE queue_rollup_15m (
    bucket          timestamptz NOT NULL,
    queue           text NOT NULL,
    offered integer NOT NULL DEFAULT 0,
    answered integer NOT NULL DEFAULT 0,
    abandoned integer NOT NULL DEFAULT 0,
    short_abandoned integer NOT NULL DEFAULT 0,
    answered_in_sl integer NOT NULL DEFAULT 0,
    wait_seconds    numeric(18, 6) NOT NULL DEFAULT 0,
    wait_max        numeric(18, 6) NOT NULL DEFAULT 0,
    talk_seconds    numeric(18, 6) NOT NULL DEFAULT 0,
    PRIMARY KEY (queue, bucket)
);
CREATE TABLE queue_rollup_day (LIKE queue_rollup_15m INCLUDING ALL);
CREATE INDEX queue_rollup_day_bucket ON queue_rollup_day (bucket);

-- Each agent's open state interval as the rollups last saw it: the time from since to now
-- is not in the rollups yet (it is closed by the agent's next transition). counters names the
-- rollup columns the state feeds (query/metrics.go decides); reason is the row it goes to.
CREATE TABLE rollup_agents (
    agent_id bigint PRIMARY KEY,
    state    text NOT NULL,
    reason   text NOT NULL DEFAULT '',
    since    timestamptz NOT NULL,
    counters text[] NOT NULL DEFAULT '{}'
);

-- What statistics read: the rollups plus the open intervals up to now(), so the current,
-- still-open bucket is complete. The tail's seconds per bucket are
-- least(now, bucket end) - greatest(since, bucket start).
CREATE VIEW agent_stats_day AS
SELECT bucket, agent_id, reason, offered, answered, missed, abandoned_ringing, outbound, handled, talk_seconds,
       wrap_count, wrap_seconds, login_seconds, ready_seconds, not_ready_seconds, busy_seconds
FROM agent_rollup_day
UNION ALL
SELECT t.bucket, o.agent_id, o.reason, 0, 0, 0, 0, 0, 0, 0, 0,
       CASE WHEN 'wrap_seconds' = ANY (o.counters) THEN t.seconds ELSE 0 END,
       CASE WHEN 'login_seconds' = ANY (o.counters) THEN t.seconds ELSE 0 END,
       CASE WHEN 'ready_seconds' = ANY (o.counters) THEN t.seconds ELSE 0 END,
       CASE WHEN 'not_ready_seconds' = ANY (o.counters) THEN t.seconds ELSE 0 END,
       CASE WHEN 'busy_seconds' = ANY (o.counters) THEN t.seconds ELSE 0 END
FROM rollup_agents o
CROSS JOIN rollup_cursor c
CROSS JOIN LATERAL (
    SELECT d AT TIME ZONE c.time_zone AS bucket,
           extract(epoch FROM least(now(), (d + interval '1 day') AT TIME ZONE c.time_zone)
                              - greatest(o.since, d AT TIME ZONE c.time_zone)) AS seconds
    FROM generate_series(date_trunc('day', o.since AT TIME ZONE c.time_zone),
                         now() AT TIME ZONE c.time_zone, interval '1 day') AS d
) t
WHERE cardinality(o.counters) > 0 AND o.since < now() AND c.time_zone <> '';

CREATE VIEW agent_stats_15m AS
SELECT bucket, agent_id, reason, offered, answered, missed, abandoned_ringing, outbound, handled, talk_seconds,
       wrap_count, wrap_seconds, login_seconds, ready_seconds, not_ready_seconds, busy_seconds
FROM agent_rollup_15m
UNION ALL
SELECT t.bucket, o.agent_id, o.reason, 0, 0, 0, 0, 0, 0, 0, 0,
       CASE WHEN 'wrap_seconds' = ANY (o.counters) THEN t.seconds ELSE 0 END,
       CASE WHEN 'login_seconds' = ANY (o.counters) THEN t.seconds ELSE 0 END,
       CASE WHEN 'ready_seconds' = ANY (o.counters) THEN t.seconds ELSE 0 END,
       CASE WHEN 'not_ready_seconds' = ANY (o.counters) THEN t.seconds ELSE 0 END,
       CASE WHEN 'busy_seconds' = ANY (o.counters) THEN t.seconds ELSE 0 END
FROM rollup_agents o
CROSS JOIN LATERAL (
    SELECT b AS bucket,
           extract(epoch FROM least(now(), b + interval '15 minutes') - greatest(o.since, b)) AS seconds
    FROM generate_series(to_timestamp(floor(extract(epoch FROM o.since) / 900) * 900), now(), interval '15 minutes') AS b
) t
WHERE cardinality(o.counters) > 0 AND o.since < now();

CREATE VIEW queue_stats_day AS
SELECT bucket, queue, offered, answered, abandoned, short_abandoned, answered_in_sl, wait_seconds, wait_max, talk_seconds
FROM queue_rollup_day;

CREATE VIEW queue_stats_15m AS
SELECT bucket, queue, offered, answered, abandoned, short_abandoned, answered_in_sl, wait_seconds, wait_max, talk_seconds
FROM queue_rollup_15m;

INSERT INTO query_tables (table_name, label_en, label_zh) VALUES
    ('agent_stats_day', 'Agent statistics per day', '坐席日统计'),
    ('agent_stats_15m', 'Agent statistics per 15 minutes', '坐席15分钟统计'),
    ('queue_stats_day', 'Queue statistics per day', '队列日统计'),
    ('queue_stats_15m', 'Queue statistics per 15 minutes', '队列15分钟统计');
