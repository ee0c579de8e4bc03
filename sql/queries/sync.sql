-- get_sync_state --
-- How far one upstream registry has been read
SELECT * FROM upstream_sync_state WHERE upstream = %(upstream)s;

-- ensure_sync_state --
-- Create an upstream's row the first time it is read
INSERT INTO upstream_sync_state (upstream) VALUES (%(upstream)s) ON CONFLICT (upstream) DO NOTHING;

-- claim_sync --
-- Hold an upstream for one run; nothing when another run holds it
UPDATE upstream_sync_state SET lease_until = %(until)s
 WHERE upstream = %(upstream)s AND (lease_until IS NULL OR lease_until < %(now)s)
RETURNING *;

-- release_sync --
-- Let the next run read the upstream
UPDATE upstream_sync_state SET lease_until = NULL WHERE upstream = %(upstream)s;

-- save_sync_progress --
-- After a page is applied: the pass's cursor and figures, and the watermark when the pass finished
UPDATE upstream_sync_state
   SET cursor = %(cursor)s, pass_since = %(pass_since)s, pass_started_at = %(pass_started_at)s,
       pass_newest = %(pass_newest)s,
       watermark = CASE WHEN %(finished)s THEN %(watermark)s ELSE watermark END,
       current_as_of = CASE WHEN %(finished)s THEN %(pass_started_at)s ELSE current_as_of END,
       last_run_at = %(now)s,
       last_success_at = CASE WHEN %(finished)s THEN %(now)s ELSE last_success_at END,
       last_error = NULL, failures = 0, entries_applied = entries_applied + %(applied)s, updated_at = %(now)s
 WHERE upstream = %(upstream)s;

-- record_sync_failure --
-- A run that stopped on an error: the cursor and watermark stay where the last good page left them
UPDATE upstream_sync_state
   SET last_error = %(error)s, failures = failures + 1, last_run_at = %(now)s, updated_at = %(now)s
 WHERE upstream = %(upstream)s;

-- list_sync_states --
-- Every upstream's state, for the lag gauge
SELECT upstream, current_as_of, watermark, failures FROM upstream_sync_state;

-- reset_sync_pass --
-- Forget a pass the upstream no longer accepts the cursor of: the next run starts again at the watermark
UPDATE upstream_sync_state
   SET cursor = NULL, pass_since = NULL, pass_started_at = NULL, pass_newest = NULL, updated_at = %(now)s
 WHERE upstream = %(upstream)s;
