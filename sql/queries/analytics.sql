-- relaxed_commit --
-- This transaction's commit does not wait for a disk flush: losing the last few discovery events in a
-- crash is acceptable for statistics
SET LOCAL synchronous_commit = off;

-- record_analytics_events --
-- Several discovery events at once, streamed with COPY (analytics.EventBuffer's batch, one row each);
-- each keeps the time it happened
COPY discovery_events (event_type, outcome, transport, result_count, duration_ms, query, capabilities,
                       domain, user_agent, client_network, created_at) FROM STDIN;

-- analytics_counts --
-- Events per type and period (last hour, day, week, 30 days), with verification outcomes
SELECT event_type,
       count(*) FILTER (WHERE created_at > now() - interval '1 hour') AS last_hour,
       count(*) FILTER (WHERE created_at > now() - interval '24 hours') AS last_24h,
       count(*) FILTER (WHERE created_at > now() - interval '7 days') AS last_7d,
       count(*) AS last_30d,
       count(*) FILTER (WHERE outcome IN ('ok', 'verified')) AS succeeded_30d,
       -- verify calls that looked up DNS (not refused before: bad input, rate limit, unknown claim)
       count(*) FILTER (WHERE outcome IN ('verified', 'pending', 'wrong_value', 'dns_error')) AS checked_30d
  FROM discovery_events
 WHERE created_at > now() - interval '30 days'
 GROUP BY event_type;

-- analytics_top_queries --
-- The searches asked most in the last 7 days (normalised text)
SELECT query AS value, count(*) AS count
  FROM discovery_events
 WHERE event_type = 'discover' AND query IS NOT NULL AND created_at > now() - interval '7 days'
 GROUP BY query
 ORDER BY count DESC, value
 LIMIT %(limit)s;

-- analytics_top_capabilities --
-- The capabilities searched for most in the last 7 days
SELECT c AS value, count(*) AS count
  FROM discovery_events, unnest(capabilities) AS c
 WHERE event_type = 'discover' AND created_at > now() - interval '7 days'
 GROUP BY c
 ORDER BY count DESC, value
 LIMIT %(limit)s;

-- prune_discovery_events --
-- Forget events older than the retention, a bounded batch at a time (short locks, small WAL bursts)
DELETE FROM discovery_events
 WHERE id IN (SELECT id FROM discovery_events WHERE created_at < %(before)s ORDER BY id LIMIT %(batch)s);
