-- One server's health figures and chart read from the indexes alone. The roll-ups of one server's hours
-- and days sit each on a heap page of its own once many servers are probed (a round writes every
-- server's row of the hour side by side), so reading 46 hourly rows from the heap touched 46 pages: at
-- 10,000 servers those pages were mostly outside the buffer cache and health_stats took twice its time
-- at 10 servers (bench/health_history.py). With the figures in the primary key's index they are an
-- index-only scan of one or two adjacent leaf pages.
ALTER TABLE health_hourly
    DROP CONSTRAINT health_hourly_pkey,
    ADD CONSTRAINT health_hourly_pkey PRIMARY KEY (server_id, hour)
        INCLUDE (checks, up_checks, latency_sum_ms, latency_checks);
ALTER TABLE health_daily
    DROP CONSTRAINT health_daily_pkey,
    ADD CONSTRAINT health_daily_pkey PRIMARY KEY (server_id, day)
        INCLUDE (checks, up_checks, latency_sum_ms, latency_checks);

-- Index-only scans skip the heap only for pages the visibility map marks all-visible, and every probe
-- updates its hour's and day's rows: vacuum these two tables after 2% of their rows changed, not the
-- default 20% (health_hourly at 10,000 servers probed every 5 minutes: about every 20 minutes instead
-- of every 3 hours), so only the newest hours are read from the heap.
ALTER TABLE health_hourly SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_insert_scale_factor = 0.02);
ALTER TABLE health_daily SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_insert_scale_factor = 0.02);
