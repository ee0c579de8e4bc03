-- Health history at scale: hourly and daily roll-ups of health_checks, kept as each probe is recorded.
-- 10k servers probed every 5 minutes write 2.9M probes a day; a server's 7-day uptime read from raw
-- rows touched ~2,000 of them (one heap page each, the rows of a round sit together). From the roll-ups
-- it reads at most 7 daily rows, 46 hourly rows and the raw probes of the two partial hours at the
-- windows' edges, so it costs the same at any registry size (bench/health_history.py).

-- Derived data, without a foreign key: its check cost more than the row's own insert (rolling up 1.9M
-- probes took 179 s with it), and a row left by a server removed outright is never read (ids are never
-- reused) and goes with age, as every roll-up does (monitor.py HOURLY_KEPT, DAILY_KEPT).

-- One row per server and hour (UTC): probes, probes that counted as up, and the latency the figures
-- average (probes answered healthy or degraded with a latency).
CREATE TABLE health_hourly (
    server_id      uuid NOT NULL,
    hour           timestamptz NOT NULL,
    checks         integer NOT NULL,
    up_checks      integer NOT NULL,
    latency_sum_ms double precision NOT NULL DEFAULT 0,
    latency_checks integer NOT NULL DEFAULT 0,
    PRIMARY KEY (server_id, hour)
);
-- Pruning reads by age.
CREATE INDEX health_hourly_hour_idx ON health_hourly (hour);

-- The same per server and day (UTC).
CREATE TABLE health_daily (
    server_id      uuid NOT NULL,
    day            timestamptz NOT NULL,
    checks         integer NOT NULL,
    up_checks      integer NOT NULL,
    latency_sum_ms double precision NOT NULL DEFAULT 0,
    latency_checks integer NOT NULL DEFAULT 0,
    PRIMARY KEY (server_id, day)
);
CREATE INDEX health_daily_day_idx ON health_daily (day);

-- The probes stored so far, rolled up once (sql/queries/health.sql rollup_health_range does the same).
INSERT INTO health_hourly (server_id, hour, checks, up_checks, latency_sum_ms, latency_checks)
SELECT server_id, date_trunc('hour', checked_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
       count(*), count(*) FILTER (WHERE is_up),
       coalesce(sum(latency_ms::float8) FILTER (WHERE status IN ('healthy', 'degraded') AND latency_ms IS NOT NULL), 0),
       count(latency_ms) FILTER (WHERE status IN ('healthy', 'degraded'))
  FROM health_checks
 GROUP BY 1, 2;

INSERT INTO health_daily (server_id, day, checks, up_checks, latency_sum_ms, latency_checks)
SELECT server_id, date_trunc('day', hour AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
       sum(checks), sum(up_checks), sum(latency_sum_ms), sum(latency_checks)
  FROM health_hourly
 GROUP BY 1, 2;
