-- schedule_third_party --
-- Give every listed server with a repository or a package a schedule row (due now) if it has none yet
INSERT INTO server_third_party_schedule (server_id, next_at)
SELECT s.id, %(now)s
  FROM mcp_servers s
 WHERE s.status = 'active'
   AND (s.repository ->> 'url' IS NOT NULL OR jsonb_typeof(s.packages) = 'array' AND s.packages <> '[]'::jsonb)
   AND NOT EXISTS (SELECT 1 FROM server_third_party_schedule t WHERE t.server_id = s.id)
ON CONFLICT DO NOTHING;

-- claim_due_third_party --
-- Claim listed servers whose sources are due, skipping rows another replica holds; the lease pushes next_at ahead
UPDATE server_third_party_schedule t
   SET next_at = %(lease_until)s, attempted_at = %(now)s
  FROM mcp_servers s
 WHERE t.server_id IN (SELECT d.server_id
                         FROM server_third_party_schedule d
                         -- Deleted listings keep their row but are never claimed (nor take a batch's room).
                         JOIN mcp_servers m ON m.id = d.server_id AND m.status = 'active'
                        WHERE d.next_at <= %(now)s
                        ORDER BY d.next_at
                        LIMIT %(limit)s
                          FOR UPDATE OF d SKIP LOCKED)
   AND s.id = t.server_id
RETURNING s.id, s.name, s.repository, s.packages;

-- finish_third_party --
-- Record a server's round: when it is next due and what failed (null when everything was read)
INSERT INTO server_third_party_schedule AS t (server_id, next_at, attempted_at, last_error)
VALUES (%(server_id)s, %(next_at)s, %(now)s, %(last_error)s)
ON CONFLICT (server_id) DO UPDATE
   SET next_at = EXCLUDED.next_at, attempted_at = EXCLUDED.attempted_at, last_error = EXCLUDED.last_error;

-- get_listed_for_third_party --
-- One listed server's sources, for a refresh on demand
SELECT id, name, repository, packages FROM mcp_servers WHERE name = %(name)s AND status = 'active';

-- third_party_of --
-- What others publish about one server, README first
SELECT source, identifier, source_url, body, truncated, keywords, license, language, etag, fetched_at,
       checked_at
  FROM server_third_party
 WHERE server_id = %(server_id)s
 ORDER BY source = 'readme' DESC, source, identifier;

-- upsert_third_party --
-- Store freshly read text; returns whether the indexed text (body, keywords) changed
WITH old AS (
    SELECT body, keywords FROM server_third_party
     WHERE server_id = %(server_id)s AND source = %(source)s AND identifier = %(identifier)s
)
INSERT INTO server_third_party AS p
       (server_id, source, identifier, source_url, body, truncated, keywords, license, language, etag,
        fetched_at, checked_at)
VALUES (%(server_id)s, %(source)s, %(identifier)s, %(source_url)s, %(body)s, %(truncated)s, %(keywords)s,
        %(license)s, %(language)s, %(etag)s, %(now)s, %(now)s)
ON CONFLICT (server_id, source, identifier) DO UPDATE
   SET source_url = EXCLUDED.source_url, body = EXCLUDED.body, truncated = EXCLUDED.truncated,
       keywords = EXCLUDED.keywords, license = EXCLUDED.license, language = EXCLUDED.language,
       etag = EXCLUDED.etag, fetched_at = EXCLUDED.fetched_at, checked_at = EXCLUDED.checked_at
RETURNING NOT EXISTS (SELECT 1 FROM old
                       WHERE old.body = %(body)s AND old.keywords = %(keywords)s::text[]) AS changed;

-- confirm_third_party --
-- The source answered 304 Not Modified: the stored text stands, confirmed now
UPDATE server_third_party
   SET checked_at = %(now)s
 WHERE server_id = %(server_id)s AND source = %(source)s AND identifier = %(identifier)s;

-- forget_third_party --
-- Drop a server's stored sources it no longer names (a package removed, the repository changed)
DELETE FROM server_third_party
 WHERE server_id = %(server_id)s AND NOT ((source || ' ' || identifier) = ANY (%(kept)s::text[]));

-- reindex_server --
-- Rebuild one server's search document (mcp_servers_search_vector reads server_third_party) and mark its meaning vector for embedding again (the embedding worker reads the same text)
WITH stale AS (
    UPDATE server_embeddings SET stale = true WHERE server_id = %(server_id)s AND NOT stale
)
UPDATE mcp_servers SET name = name WHERE id = %(server_id)s;
