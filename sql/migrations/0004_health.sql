-- Health history and trust: one row per probe, per-server figures computed from it, and the columns the
-- scheduler claims work with.

CREATE TABLE health_checks (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    server_id        uuid NOT NULL REFERENCES mcp_servers (id) ON DELETE CASCADE,
    checked_at       timestamptz NOT NULL,
    status           text NOT NULL
                     CHECK (status IN ('healthy', 'degraded', 'auth_required', 'unhealthy', 'unreachable',
                                       'blocked')),
    is_up            boolean NOT NULL,
    latency_ms       real,
    http_status      integer,
    protocol_version text,
    server_name      text,
    server_version   text,
    error_class      text,
    error            text,
    tls_valid        boolean,
    tools_fingerprint text,
    tools_changed    boolean NOT NULL DEFAULT false,
    trigger          text NOT NULL DEFAULT 'schedule' CHECK (trigger IN ('schedule', 'realtime'))
);
-- Uptime windows and recent history read one server's newest rows; pruning reads by age.
-- INCLUDE makes the uptime query an index-only scan: one server's week of probes is spread over as
-- many heap pages as it has rows (every server is probed each round). bench/record.py with 7 days of
-- history for 50 servers: 13.2 ms per recorded probe without it, 2.3 ms with it.
CREATE INDEX health_checks_server_time_idx ON health_checks (server_id, checked_at DESC)
    INCLUDE (is_up, status, latency_ms);
CREATE INDEX health_checks_time_idx ON health_checks (checked_at);

ALTER TABLE mcp_servers
    ADD COLUMN uptime_24h         real,
    ADD COLUMN uptime_7d          real,
    ADD COLUMN tools_changed_at   timestamptz,
    ADD COLUMN tls_valid          boolean,
    ADD COLUMN trust_breakdown    jsonb,
    ADD COLUMN next_probe_at      timestamptz,
    ADD COLUMN realtime_probe_at  timestamptz;

-- Due work for the scheduler: listed servers with a remote endpoint, oldest due first.
CREATE INDEX mcp_servers_next_probe_idx ON mcp_servers (next_probe_at NULLS FIRST)
    WHERE status = 'active' AND endpoint IS NOT NULL;
