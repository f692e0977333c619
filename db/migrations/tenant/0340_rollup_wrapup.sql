-- query: one definition of handle time (docs/metrics.md): talk + wrap-up from the statistics
-- rollups, for reports and the live wallboard alike.
--
-- A queue's handle time needs the wrap-up that followed its calls: an agent's wrap-up
-- interval counts for the queue of the call it began with, so the open interval keeps its
-- call. Wrap-up time now counts once the interval is over (the open tail of the agent views
-- no longer includes it: see query.Counter.Closed); run `ctid rollup rebuild` to recount
-- history with these rules.
ALTER TABLE queue_rollup_15m ADD COLUMN wrap_seconds numeric(18, 6) NOT NULL DEFAULT 0;
ALTER TABLE queue_rollup_day ADD COLUMN wrap_seconds numeric(18, 6) NOT NULL DEFAULT 0;
ALTER TABLE rollup_agents ADD COLUMN call_id text NOT NULL DEFAULT '';

CREATE OR REPLACE VIEW queue_stats_day AS
SELECT bucket, queue, offered, answered, abandoned, short_abandoned, answered_in_sl, wait_seconds, wait_max, talk_seconds,
       wrap_seconds
FROM queue_rollup_day;

CREATE OR REPLACE VIEW queue_stats_15m AS
SELECT bucket, queue, offered, answered, abandoned, short_abandoned, answered_in_sl, wait_seconds, wait_max, talk_seconds,
       wrap_seconds
FROM queue_rollup_15m;

-- The per-CDR handle time of 0610_handle_time.sql was a second definition: gone. (A database
-- that applied 0610 before it was emptied has them; a new one never gets them.)
DROP TRIGGER IF EXISTS agent_state_log_wrapup_over ON agent_state_log;
DROP FUNCTION IF EXISTS cdr_wrapup_over();
ALTER TABLE cdrs DROP COLUMN IF EXISTS handle_seconds;
ALTER TABLE cdrs DROP COLUMN IF EXISTS wrapup_seconds;
