"""Synthesize a large registry from the imported seed, set-based (one INSERT ... SELECT generate_series).

Copies of the seed rows get a numeric suffix, spread trust, health, latency, age, capabilities, categories
and domains (every tenth copy is a DNS-verified registered server on one of 1,000 domains). The search
vector is copied from the seed row rather than recomputed row by row, so 100k rows take seconds.
"""

from __future__ import annotations

from typing import Any

CAPABILITIES = ["email", "search", "calendar", "database", "files", "chat", "payments", "monitoring"]
CATEGORIES = ["communication", "productivity", "data", "developer", "finance"]

_SQL = """
INSERT INTO domains (domain, verified)
SELECT 'org' || g || '.example.com', true FROM generate_series(0, 999) AS g
ON CONFLICT DO NOTHING;

ALTER TABLE mcp_servers DISABLE TRIGGER mcp_servers_search_vector_trg;
ALTER TABLE mcp_servers DISABLE TRIGGER mcp_servers_discovery_generation_insert_delete;

INSERT INTO mcp_servers
       (name, title, description, version, domain, endpoint, transport, transports, capabilities, category,
        auth_type, repository, packages, remotes, remotes_blocked, source, status, verified, health_status,
        trust_score, uptime_percentage, avg_response_time_ms, search_vector, created_at, updated_at,
        listing_updated_at, published_at)
SELECT b.name || '-' || g.g,
       b.title, b.description, b.version,
       CASE WHEN g.g %% 10 = 0 THEN 'org' || ((g.g / 10 + b.i) %% 1000) || '.example.com' END,
       b.endpoint, b.transport, b.transports,
       ARRAY[(%(caps)s::text[])[1 + (g.g + b.i) %% 8], (%(caps)s::text[])[1 + (g.g * 3 + b.i) %% 8]],
       (%(cats)s::text[])[1 + (g.g + b.i) %% 5],
       (ARRAY['none', 'api_key', 'oauth2'])[1 + (g.g + b.i) %% 3],
       b.repository, b.packages, b.remotes, b.remotes_blocked,
       CASE WHEN g.g %% 10 = 0 THEN 'register' ELSE 'import' END,
       'active',
       g.g %% 10 = 0,
       (ARRAY['healthy', 'healthy', 'degraded', 'unknown', 'unreachable'])[1 + (g.g + b.i) %% 5],
       (g.g * 37 + b.i) %% 101,
       ((g.g + b.i) %% 100)::real,
       CASE WHEN (g.g + b.i) %% 4 = 0 THEN NULL ELSE ((g.g * 13 + b.i) %% 900)::real END,
       b.search_vector,
       now() - ((g.g * 7 + b.i) %% 100000) * interval '1 minute',
       now(), now(), now()
  FROM (SELECT row_number() OVER (ORDER BY name) AS i, s.*
          FROM mcp_servers s WHERE s.source = 'import' AND s.name !~ '-[0-9]+$') AS b,
       generate_series(1, %(copies)s) AS g (g)
 ORDER BY g.g, b.i
 LIMIT %(rows)s;

ALTER TABLE mcp_servers ENABLE TRIGGER mcp_servers_search_vector_trg;
ALTER TABLE mcp_servers ENABLE TRIGGER mcp_servers_discovery_generation_insert_delete;
SELECT nextval('discovery_generation');
SELECT pg_notify('mcplookup_discovery_generation', '');
"""


def synthesize(conn: Any, total: int) -> int:
    """Grow mcp_servers to about `total` rows (the seed must be imported); returns the rows added."""
    base = conn.execute("SELECT count(*) FROM mcp_servers WHERE source = 'import'").fetchone()[0]
    wanted = max(total - base, 0)
    if wanted == 0 or base == 0:
        return 0
    copies = -(-wanted // base)
    for statement in _SQL.split(";\n"):
        if statement.strip():
            conn.execute(
                statement, {"caps": CAPABILITIES, "cats": CATEGORIES, "copies": copies, "rows": wanted}
            )
    conn.execute("ANALYZE mcp_servers")
    conn.execute("ANALYZE search_postings")
    return wanted
