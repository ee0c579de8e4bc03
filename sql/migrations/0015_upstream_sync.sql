-- Following upstream registries (mcplookup sync): how far each upstream has been read.
-- `watermark` is where the next pass starts (updated_since); it moves only when a pass reaches the last
-- page. While a pass is under way, `cursor` is the upstream's nextCursor after the last applied page, and
-- `pass_since` / `pass_started_at` / `pass_newest` belong to that pass, so a restart resumes it.
CREATE TABLE upstream_sync_state (
    upstream          text PRIMARY KEY,
    watermark         timestamptz,
    cursor            text,
    pass_since        timestamptz,
    pass_started_at   timestamptz,
    pass_newest       timestamptz,
    -- When the last finished pass began, by the upstream's clock: our copy is current as of then.
    current_as_of     timestamptz,
    last_run_at       timestamptz,
    last_success_at   timestamptz,
    last_error        text,
    failures          integer NOT NULL DEFAULT 0,
    entries_applied   bigint NOT NULL DEFAULT 0,
    -- A run holds the upstream until then (mcplookup sync and the leader's job never read it at once);
    -- a run that died frees it when the lease ends.
    lease_until       timestamptz,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT upstream_sync_cursor_has_pass CHECK (cursor IS NULL OR pass_started_at IS NOT NULL)
);
