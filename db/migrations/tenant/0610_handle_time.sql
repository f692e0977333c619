-- Handle time of a call = its talk time + the answering agent's wrap-up after it
-- (docs/metrics.md). wrapup_seconds is set once, when the agent leaves Wrap-up (or, for a
-- call without wrap-up, leaves On call for anything but Wrap-up): by a trigger on the
-- agent-state log, in the same transaction as the transition. Until then both are NULL, and
-- averages (which skip NULL) count the call's handle time only once it is known.
ALTER TABLE cdrs ADD COLUMN wrapup_seconds numeric(12, 3) CHECK (wrapup_seconds >= 0);
ALTER TABLE cdrs ADD COLUMN handle_seconds numeric(12, 3)
    GENERATED ALWAYS AS (talk_seconds + wrapup_seconds) STORED;

-- The event log writes with schema-qualified names and no search_path: the function keeps
-- the tenant schema it was created in.
CREATE FUNCTION cdr_wrapup_over() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    prev agent_state_log;
    call text;
    wrap interval;
BEGIN
    IF NEW.from_state NOT IN ('wrap_up', 'on_call') OR NEW.to_state = 'wrap_up' THEN
        RETURN NULL;
    END IF;
    -- The agent's previous transition: how they entered the state they leave now.
    SELECT * INTO prev FROM agent_state_log
        WHERE agent_id = NEW.agent_id AND seq < NEW.seq ORDER BY seq DESC LIMIT 1;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF NEW.from_state = 'wrap_up' THEN
        IF prev.to_state <> 'wrap_up' THEN
            RETURN NULL;
        END IF;
        call := prev.call_id;
        wrap := NEW.at - prev.at;
    ELSE
        call := coalesce(nullif(NEW.call_id, ''), prev.call_id);
        wrap := interval '0';
    END IF;
    IF call = '' THEN
        RETURN NULL;
    END IF;
    UPDATE cdrs SET wrapup_seconds = round(extract(epoch FROM greatest(wrap, interval '0')), 3)
        WHERE call_id = call AND agent_id = NEW.agent_id AND wrapup_seconds IS NULL
          AND offered_at <= NEW.at AND offered_at > NEW.at - interval '2 days';
    RETURN NULL;
END $$;

CREATE TRIGGER agent_state_log_wrapup_over AFTER INSERT ON agent_state_log
    FOR EACH ROW EXECUTE FUNCTION cdr_wrapup_over();
