-- Two rules about servers, each written once, as SQL functions every statement calls by name.
--
-- Both are one SQL expression of their row, LANGUAGE sql and IMMUTABLE (they read nothing but the row),
-- so the planner inlines them: a statement calling mcp_server_listed(s) is planned exactly as if it
-- said the expression itself, keeping its index use (bench/plans.py prints the plans;
-- tests/test_listed_rule.py checks that no call survives planning).

-- Listed: what discovery shows by default, what capability counts and registry figures count, and
-- what has search postings. Active, and either DNS-verified or imported from another registry. A
-- registered server whose domain lost its verification stays active but is not listed.
CREATE FUNCTION mcp_server_listed(s mcp_servers) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT s.status = 'active' AND (s.verified OR s.source = 'import')
$$;

-- Probed: what the scheduler probes. Every active server with a remote endpoint, listed or not: a
-- domain that lost its verification keeps being re-checked and, once verified again, is listed with
-- its uptime and trust computed from a history without a gap; get_server_health answers for it
-- meanwhile. Pending claims and deleted listings are never probed.
CREATE FUNCTION mcp_server_probed(s mcp_servers) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT s.status = 'active' AND s.endpoint IS NOT NULL AND s.transport IN ('streamable-http', 'sse')
$$;

-- Postings follow the listed rule (migration 0008 wrote it out).
CREATE OR REPLACE FUNCTION search_postings_of(s mcp_servers) RETURNS TABLE (lexeme text, strength smallint, server_id uuid)
LANGUAGE sql IMMUTABLE AS $$
    SELECT u.lexeme,
           (SELECT max(CASE w WHEN 'A' THEN 3 WHEN 'B' THEN 2 WHEN 'C' THEN 1 ELSE 0 END)
              FROM unnest(u.weights) AS w)::smallint,
           s.id
      FROM unnest(s.search_vector) AS u (lexeme, positions, weights)
     WHERE mcp_server_listed(s) AND length(u.lexeme) <= 60
$$;
