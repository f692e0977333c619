-- Runs with search_path set to the tenant's schema (t_<code>).
-- The recording of a call, when the PBX that handled it keeps one and reports where
-- (the HTTP call-event API's hangup carries recording_url). The QA scoring page links it.
ALTER TABLE cdrs ADD COLUMN recording_url text NOT NULL DEFAULT '';
