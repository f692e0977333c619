-- cti: a call that was in progress when ctid stopped (a crash, a kill, a restart) is closed
-- at the next start with result 'interrupted' (and its call.ended event), so reports and
-- the wallboard keep no phantom active calls.
ALTER TABLE cdrs DROP CONSTRAINT cdrs_result_check;
ALTER TABLE cdrs ADD CONSTRAINT cdrs_result_check
    CHECK (result IN ('answered', 'abandoned', 'timeout', 'busy', 'no_answer', 'failed', 'rejected', 'interrupted'));
