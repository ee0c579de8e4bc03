-- discover_servers --
-- Ranked discovery: any query word may match (OR of stemmed lexemes), weighted relevance first, then trust
WITH q AS (
    SELECT words,
           CASE WHEN cardinality(words) = 0 THEN NULL
                ELSE array_to_string(ARRAY(SELECT quote_literal(w) FROM unnest(words) AS w), ' | ')::tsquery
           END AS tsq
      FROM (SELECT tsvector_to_array(to_tsvector('english', %(query)s::text)) AS words) AS parsed
), ranked AS (
    SELECT s.id, s.name, s.title, s.description, s.version, s.domain, s.endpoint, s.transport,
           s.capabilities, s.category, s.auth_type, s.website_url, s.repository, s.packages, s.remotes,
           s.source, s.status, s.verified, s.health_status, s.trust_score, s.uptime_percentage,
           s.avg_response_time_ms, s.last_health_check_at, s.tools, s.created_at, s.updated_at,
           s.published_at,
           CASE WHEN q.tsq IS NULL THEN 0
                ELSE ts_rank_cd('{0.1, 0.2, 0.4, 1.0}', s.search_vector, q.tsq, 1) END AS relevance
      FROM mcp_servers s, q
     WHERE (s.status = 'active' OR (%(include_pending)s AND s.status = 'pending'))
       AND (s.verified OR s.source = 'import' OR s.status = 'pending')
       AND (%(query)s::text = '' OR s.search_vector @@ q.tsq)
       AND (%(domain)s::text IS NULL OR s.domain = %(domain)s OR s.domain LIKE %(domain_suffix)s)
       AND (%(capabilities)s::text[] IS NULL OR s.capabilities @> %(capabilities)s::text[])
       AND (%(category)s::text IS NULL OR s.category = %(category)s)
     ORDER BY relevance DESC, s.verified DESC, s.trust_score DESC, s.name
     LIMIT %(limit)s
)
-- Why each result matched: which stored fields hold which query terms, for the returned rows only.
SELECT r.*,
       (SELECT coalesce(jsonb_object_agg(f.field, f.terms), '{}'::jsonb)
          FROM (SELECT d.field, array_agg(w ORDER BY w) AS terms
                  FROM unnest(q.words) AS w,
                       (VALUES ('name', regexp_replace(r.name, '[./_-]+', ' ', 'g') || ' ' || coalesce(r.title, '')),
                               ('capabilities', array_to_string(r.capabilities, ' ') || ' ' || coalesce(r.category, '')),
                               ('description', r.description),
                               ('tools', (SELECT coalesce(string_agg((t ->> 'name') || ' ' || coalesce(t ->> 'description', ''), ' '), '')
                                            FROM jsonb_array_elements(r.tools) AS t))) AS d (field, doc)
                 WHERE to_tsvector('english', d.doc) @@ quote_literal(w)::tsquery
                 GROUP BY d.field) AS f) AS matched
  FROM ranked r, q
 ORDER BY r.relevance DESC, r.verified DESC, r.trust_score DESC, r.name;
