-- Superseded before release: handle time is defined once, by the statistics rollups
-- (query/metrics.go, docs/metrics.md). This migration used to add cdrs.wrapup_seconds,
-- cdrs.handle_seconds and a trigger on agent_state_log; 0340_rollup_wrapup.sql removes them
-- from databases that applied it. Kept (empty) so its version stays recorded the same way.
SELECT 1;
