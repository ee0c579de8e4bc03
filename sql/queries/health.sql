-- claim_due_servers --
-- Claim probed servers (mcp_server_probed) whose probe is due, skipping rows another replica holds; the lease pushes next_probe_at ahead
UPDATE mcp_servers s
   SET next_probe_at = %(lease_until)s
 WHERE s.id IN (SELECT p.id
                  FROM mcp_servers p
                 WHERE mcp_server_probed(p)
                   AND (p.next_probe_at IS NULL OR p.next_probe_at <= %(now)s)
                 ORDER BY p.next_probe_at NULLS FIRST
                 LIMIT %(limit)s
                   FOR UPDATE SKIP LOCKED)
RETURNING s.id, s.name, s.endpoint, s.transport;

-- lock_server_for_health --
-- The facts a probe result is judged against, locked while the result is recorded
SELECT id, name, verified, auth_type, endpoint, transport, tools_fingerprint, tools_changed_at,
       created_at, published_at
  FROM mcp_servers
 WHERE id = %(id)s AND status <> 'pending'
   FOR UPDATE;

-- insert_health_check --
-- One probe, as observed, counted at once in its server's hourly and daily roll-ups (UTC hours and days)
WITH probe AS (
    INSERT INTO health_checks
           (server_id, checked_at, status, is_up, latency_ms, http_status, protocol_version, server_name,
            server_version, error_class, error, tls_valid, tools_fingerprint, tools_changed, trigger)
    VALUES (%(server_id)s, %(checked_at)s, %(status)s, %(is_up)s, %(latency_ms)s, %(http_status)s,
            %(protocol_version)s, %(server_name)s, %(server_version)s, %(error_class)s, %(error)s,
            %(tls_valid)s, %(tools_fingerprint)s, %(tools_changed)s, %(trigger)s)
    RETURNING server_id, checked_at, is_up,
              CASE WHEN status IN ('healthy', 'degraded') THEN latency_ms END AS latency_ms
), hourly AS (
    INSERT INTO health_hourly AS h (server_id, hour, checks, up_checks, latency_sum_ms, latency_checks)
    SELECT server_id, date_trunc('hour', checked_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', 1, is_up::int,
           coalesce(latency_ms, 0), (latency_ms IS NOT NULL)::int
      FROM probe
        ON CONFLICT (server_id, hour) DO UPDATE
       SET checks = h.checks + 1, up_checks = h.up_checks + excluded.up_checks,
           latency_sum_ms = h.latency_sum_ms + excluded.latency_sum_ms,
           latency_checks = h.latency_checks + excluded.latency_checks
)
INSERT INTO health_daily AS d (server_id, day, checks, up_checks, latency_sum_ms, latency_checks)
SELECT server_id, date_trunc('day', checked_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', 1, is_up::int,
       coalesce(latency_ms, 0), (latency_ms IS NOT NULL)::int
  FROM probe
    ON CONFLICT (server_id, day) DO UPDATE
   SET checks = d.checks + 1, up_checks = d.up_checks + excluded.up_checks,
       latency_sum_ms = d.latency_sum_ms + excluded.latency_sum_ms,
       latency_checks = d.latency_checks + excluded.latency_checks;

-- health_stats --
-- Uptime over 24 h and 7 d (share of probes whose status counts as up) and mean handshake latency over 24 h, from the roll-ups
-- Whole days and hours come from health_daily and health_hourly, the partial hours at the windows' edges
-- from the raw probes (repository.health_stats computes the boundaries): the figures equal those of the
-- raw rows exactly (tests/test_health_rollups.py), reading at most 7 + 46 roll-up rows and two hours of probes.
-- The ranges are disjoint (the partial hour at the 24 h edge counts toward 7 d through its hour's
-- roll-up). One arm per range, each an index-only scan of one server's adjacent index entries (the
-- indexes carry the columns read): an OR of the ranges was a bitmap scan, which reads a heap page per
-- row, and one server's rows sit each on a page of their own once many servers are probed.
WITH parts AS (
    SELECT false AS in_24h, true AS in_7d, 1 AS checks, is_up::int AS up_checks,
           CASE WHEN status IN ('healthy', 'degraded') THEN latency_ms END AS latency_sum_ms,
           (status IN ('healthy', 'degraded') AND latency_ms IS NOT NULL)::int AS latency_checks
      FROM health_checks
     WHERE server_id = %(id)s AND checked_at > %(since_7d)s AND checked_at < %(h7)s
    UNION ALL
    SELECT true, false, 1, is_up::int,
           CASE WHEN status IN ('healthy', 'degraded') THEN latency_ms END,
           (status IN ('healthy', 'degraded') AND latency_ms IS NOT NULL)::int
      FROM health_checks
     WHERE server_id = %(id)s AND checked_at > %(since_24h)s AND checked_at < %(h24)s
    UNION ALL
    SELECT true, true, 1, is_up::int,
           CASE WHEN status IN ('healthy', 'degraded') THEN latency_ms END,
           (status IN ('healthy', 'degraded') AND latency_ms IS NOT NULL)::int
      FROM health_checks
     WHERE server_id = %(id)s AND checked_at >= %(h_now)s AND checked_at <= %(now)s
    UNION ALL
    SELECT false, true, checks, up_checks, latency_sum_ms, latency_checks
      FROM health_hourly
     WHERE server_id = %(id)s AND hour >= %(h7)s AND hour < %(d7)s
    UNION ALL
    SELECT true, hour < %(d7)s OR hour >= %(d_now)s, checks, up_checks, latency_sum_ms, latency_checks
      FROM health_hourly
     WHERE server_id = %(id)s AND hour >= %(h24)s AND hour < %(h_now)s
    UNION ALL
    SELECT false, true, checks, up_checks, latency_sum_ms, latency_checks
      FROM health_daily
     WHERE server_id = %(id)s AND day >= %(d7)s AND day < %(d_now)s
)
SELECT round((100.0 * sum(up_checks) FILTER (WHERE in_24h)
              / nullif(sum(checks) FILTER (WHERE in_24h), 0))::numeric, 2)::float8 AS uptime_24h,
       round((100.0 * sum(up_checks) FILTER (WHERE in_7d)
              / nullif(sum(checks) FILTER (WHERE in_7d), 0))::numeric, 2)::float8 AS uptime_7d,
       round((sum(latency_sum_ms) FILTER (WHERE in_24h)
              / nullif(sum(latency_checks) FILTER (WHERE in_24h), 0))::numeric, 1)::float8 AS avg_latency_ms,
       coalesce(sum(checks) FILTER (WHERE in_24h), 0)::int AS checks_24h,
       coalesce(sum(checks) FILTER (WHERE in_7d), 0)::int AS checks_7d
  FROM parts;

-- rollup_health_range --
-- Compute the hourly and daily roll-ups of the probes in [from, to) again from the raw rows (whole UTC days; for probes loaded in bulk)
WITH hours AS (
    SELECT server_id, date_trunc('hour', checked_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS hour,
           count(*) AS checks, count(*) FILTER (WHERE is_up) AS up_checks,
           coalesce(sum(latency_ms::float8) FILTER (WHERE status IN ('healthy', 'degraded')), 0) AS latency_sum_ms,
           count(latency_ms) FILTER (WHERE status IN ('healthy', 'degraded')) AS latency_checks
      FROM health_checks
     WHERE checked_at >= %(from)s AND checked_at < %(to)s
     GROUP BY 1, 2
), hourly AS (
    INSERT INTO health_hourly (server_id, hour, checks, up_checks, latency_sum_ms, latency_checks)
    SELECT server_id, hour, checks, up_checks, latency_sum_ms, latency_checks FROM hours
        ON CONFLICT (server_id, hour) DO UPDATE
       SET checks = excluded.checks, up_checks = excluded.up_checks,
           latency_sum_ms = excluded.latency_sum_ms, latency_checks = excluded.latency_checks
)
INSERT INTO health_daily (server_id, day, checks, up_checks, latency_sum_ms, latency_checks)
SELECT server_id, date_trunc('day', hour AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
       sum(checks), sum(up_checks), sum(latency_sum_ms), sum(latency_checks)
  FROM hours
 GROUP BY 1, 2
    ON CONFLICT (server_id, day) DO UPDATE
   SET checks = excluded.checks, up_checks = excluded.up_checks,
       latency_sum_ms = excluded.latency_sum_ms, latency_checks = excluded.latency_checks;

-- daily_uptime --
-- A server's probes and uptime per UTC day from the daily roll-up, oldest first
SELECT day, checks, round((100.0 * up_checks / nullif(checks, 0))::numeric, 2)::float8 AS uptime
  FROM health_daily
 WHERE server_id = %(id)s AND day >= %(since)s
 ORDER BY day;

-- health_timeline --
-- A server's probes per UTC day from since, then per UTC hour from hourly_from on, oldest first, from the roll-ups (the server page's chart)
SELECT start, hours, checks, up_checks, latency_ms
  FROM (SELECT day AS start, 24 AS hours, checks, up_checks,
               latency_sum_ms / nullif(latency_checks, 0) AS latency_ms
          FROM health_daily
         WHERE server_id = %(id)s AND day >= %(since)s AND day < %(hourly_from)s
        UNION ALL
        SELECT hour, 1, checks, up_checks, latency_sum_ms / nullif(latency_checks, 0)
          FROM health_hourly
         WHERE server_id = %(id)s AND hour >= %(hourly_from)s) AS spans
 ORDER BY start;

-- update_server_tools --
-- Store the tool list the prober saw; the search_vector trigger re-indexes tool names and descriptions
UPDATE mcp_servers
   SET tools = %(tools)s, tools_fingerprint = %(fingerprint)s, tools_changed_at = %(changed_at)s
 WHERE id = %(id)s;

-- update_server_health --
-- The server's current health and trust, computed from its history after a probe
UPDATE mcp_servers
   SET health_status = %(status)s, uptime_24h = %(uptime_24h)s, uptime_7d = %(uptime_7d)s,
       uptime_percentage = %(uptime_7d)s, avg_response_time_ms = %(avg_latency_ms)s,
       last_health_check_at = %(now)s, tls_valid = %(tls_valid)s, trust_score = %(trust_score)s,
       trust_breakdown = %(trust_breakdown)s, next_probe_at = coalesce(%(next_probe_at)s, next_probe_at)
 WHERE id = %(id)s;

-- take_realtime_slot --
-- Allow one on-demand probe per server per interval, across replicas: the update succeeds only when the slot is free
UPDATE mcp_servers
   SET realtime_probe_at = %(now)s
 WHERE id = %(id)s AND (realtime_probe_at IS NULL OR realtime_probe_at <= %(not_before)s)
RETURNING id;

-- get_health_servers --
-- Listed servers by registry name or by domain, with their stored health and trust
SELECT id, name, domain, endpoint, transport, auth_type, verified, health_status, trust_score,
       trust_breakdown, uptime_24h, uptime_7d, avg_response_time_ms, last_health_check_at, tls_valid,
       tools, tools_fingerprint, tools_changed_at, next_probe_at, realtime_probe_at, created_at, published_at
  FROM mcp_servers
 WHERE status = 'active'
   AND ((%(name)s::text IS NOT NULL AND name = %(name)s) OR (%(domain)s::text IS NOT NULL AND domain = %(domain)s))
 ORDER BY name;

-- recent_health_checks --
-- A server's newest probes, newest first
SELECT checked_at, status, is_up, latency_ms, http_status, protocol_version, server_name, server_version,
       error_class, error, tls_valid, tools_changed, trigger
  FROM health_checks
 WHERE server_id = %(id)s
 ORDER BY checked_at DESC, id DESC
 LIMIT %(limit)s;

-- prune_health_checks --
-- Delete one batch of probes older than the retention cutoff; the caller repeats until a batch comes back short
DELETE FROM health_checks
 WHERE id IN (SELECT id FROM health_checks WHERE checked_at < %(cutoff)s LIMIT %(batch)s);

-- prune_health_hourly --
-- Delete one batch of hourly roll-ups older than the cutoff; the caller repeats until a batch comes back short
DELETE FROM health_hourly
 WHERE (server_id, hour) IN (SELECT server_id, hour FROM health_hourly WHERE hour < %(cutoff)s LIMIT %(batch)s);

-- prune_health_daily --
-- Delete one batch of daily roll-ups older than the cutoff; the caller repeats until a batch comes back short
DELETE FROM health_daily
 WHERE (server_id, day) IN (SELECT server_id, day FROM health_daily WHERE day < %(cutoff)s LIMIT %(batch)s);

-- healthy_servers_percentage --
-- Share of the servers the scheduler probes (mcp_server_probed), probed at least once, whose last probe counted as up
SELECT round((100.0 * count(*) FILTER (WHERE s.health_status IN ('healthy', 'degraded', 'auth_required'))
              / nullif(count(*), 0))::numeric, 2)::float8 AS pct
  FROM mcp_servers s
 WHERE mcp_server_probed(s) AND s.health_status <> 'unknown';
