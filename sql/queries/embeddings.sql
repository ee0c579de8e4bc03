-- Server embeddings for semantic search: what to embed, storing vectors, nearest neighbours, figures.

-- embedding_storage --
-- Whether this database keeps the vectors in pgvector too (migration 0013 adds the column where it can)
SELECT EXISTS (SELECT 1 FROM pg_attribute
                WHERE attrelid = 'server_embeddings'::regclass AND attname = 'vec' AND NOT attisdropped)
       AS has_vector;

-- claim_unembedded --
-- Servers with no current embedding of this model, locked for this transaction; rows another replica holds are skipped
SELECT s.id, s.name, s.title, s.description, s.capabilities, s.category, s.tools,
       -- What others publish about it (package registries' descriptions first, then the README's
       -- opening): after the owner's own words, so it counts only where those leave room in the model's
       -- input. Capped: the model reads a few hundred words at most.
       (SELECT left(string_agg(p.body, ' ' ORDER BY p.source = 'readme', p.source, p.identifier), 2000)
          FROM server_third_party p WHERE p.server_id = s.id) AS third_party
  FROM mcp_servers s
 WHERE s.status IN ('active', 'pending')
   AND NOT EXISTS (SELECT 1 FROM server_embeddings e
                    WHERE e.server_id = s.id AND e.model = %(model)s AND NOT e.stale)
 ORDER BY s.status, s.id
 LIMIT %(limit)s
   -- NO KEY UPDATE: a probe's health_checks row (a foreign key share lock) need not wait for the batch.
   FOR NO KEY UPDATE OF s SKIP LOCKED;

-- store_embeddings --
-- Write a batch of vectors (one '{...}' real[] literal each) and move the discovery generation: answers change
WITH stored AS (
    INSERT INTO server_embeddings AS e (server_id, model, embedding, stale, embedded_at)
    SELECT u.id, %(model)s, u.v::real[], false, now()
      FROM unnest(%(ids)s::uuid[], %(vectors)s::text[]) AS u (id, v)
    ON CONFLICT (server_id) DO UPDATE
       SET model = EXCLUDED.model, embedding = EXCLUDED.embedding, stale = false, embedded_at = now()
    RETURNING 1
)
SELECT count(*) AS stored, nextval('discovery_generation') AS generation FROM stored;

-- store_embeddings_vector --
-- The same, keeping the vectors in pgvector's column too
WITH stored AS (
    INSERT INTO server_embeddings AS e (server_id, model, embedding, vec, stale, embedded_at)
    SELECT u.id, %(model)s, u.v::real[], u.v::real[]::vector, false, now()
      FROM unnest(%(ids)s::uuid[], %(vectors)s::text[]) AS u (id, v)
    ON CONFLICT (server_id) DO UPDATE
       SET model = EXCLUDED.model, embedding = EXCLUDED.embedding, vec = EXCLUDED.vec, stale = false,
           embedded_at = now()
    RETURNING 1
)
SELECT count(*) AS stored, nextval('discovery_generation') AS generation FROM stored;

-- nearest_embeddings --
-- The servers nearest a question's vector by cosine similarity, from pgvector's HNSW index
SELECT e.server_id AS id, 1 - (e.vec <=> %(vector)s::real[]::vector) AS similarity
  FROM server_embeddings e
 WHERE e.model = %(model)s AND e.vec IS NOT NULL
 ORDER BY e.vec <=> %(vector)s::real[]::vector
 LIMIT %(limit)s;

-- iterative_vector_scan --
-- For this transaction: an HNSW scan under a filter goes on until enough rows pass it (pgvector 0.8's iterative index scans)
SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true) AS iterative_scan;

-- model_embeddings --
-- Every vector of this model, for scoring in process where the database has no pgvector
SELECT e.server_id AS id, e.embedding
  FROM server_embeddings e
 WHERE e.model = %(model)s
 ORDER BY e.server_id
 LIMIT %(limit)s;

-- embedding_progress --
-- Servers embedded with this model, and servers still waiting (new, changed or of another model)
SELECT count(*) FILTER (WHERE e.server_id IS NOT NULL AND NOT e.stale) AS embedded,
       count(*) FILTER (WHERE e.server_id IS NULL OR e.stale) AS waiting
  FROM mcp_servers s
  LEFT JOIN server_embeddings e ON e.server_id = s.id AND e.model = %(model)s
 WHERE mcp_server_listed(s);
