-- Discovery analytics: what was asked (discover, get, register, verify), by whom roughly, and how fast.
-- The client address is stored truncated to its network (IPv4 /24, IPv6 /48), never whole: see
-- docs/observability.md. The search text is kept normalised and capped, pruned with the rest after
-- MCPLOOKUP_ANALYTICS_RETENTION_DAYS.
ALTER TABLE discovery_events
    ADD COLUMN event_type     text NOT NULL DEFAULT 'discover',
    ADD COLUMN outcome        text NOT NULL DEFAULT 'ok',
    ADD COLUMN query          text,
    ADD COLUMN capabilities   text[] NOT NULL DEFAULT '{}',
    ADD COLUMN domain         text,
    ADD COLUMN user_agent     text,
    ADD COLUMN client_network text;

CREATE INDEX discovery_events_type_created_idx ON discovery_events (event_type, created_at);
