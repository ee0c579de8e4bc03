-- Sentence embeddings of servers for semantic search (services/embedding_worker.py writes them off the
-- request path; docs/discovery.md has the ranking that reads them). One row per server, with the model
-- that made it: a server without a row of the current model, or marked stale, is embedded again.
CREATE TABLE server_embeddings (
    server_id   uuid PRIMARY KEY REFERENCES mcp_servers (id) ON DELETE CASCADE,
    model       text NOT NULL,
    embedding   real[] NOT NULL,
    stale       boolean NOT NULL DEFAULT false,
    embedded_at timestamptz NOT NULL DEFAULT now()
);

-- A change to what is embedded (the embedding worker's text: name, title, description, capabilities,
-- category, tool names) marks the row stale; the old vector serves until the new one is written.
CREATE FUNCTION mcp_servers_embedding_stale() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE server_embeddings SET stale = true WHERE server_id = NEW.id AND NOT stale;
    RETURN NULL;
END
$$;

CREATE TRIGGER mcp_servers_embedding_stale
    AFTER UPDATE OF name, title, description, capabilities, category, tools ON mcp_servers
    FOR EACH ROW
    WHEN ((OLD.name, OLD.title, OLD.description, OLD.capabilities, OLD.category, OLD.tools)
          IS DISTINCT FROM (NEW.name, NEW.title, NEW.description, NEW.capabilities, NEW.category, NEW.tools))
    EXECUTE FUNCTION mcp_servers_embedding_stale();

-- pgvector where the server has it (the embedded PostgreSQL 18 does; Debian's PostgreSQL 15 package
-- does not): the same vectors in a `vector` column with an HNSW index, searched in the database. Without
-- it, or without the right to create it, the real[] column is all there is and each replica scores the
-- vectors in process (services/semantic.py). 384: all-MiniLM-L6-v2's dimensions; a model of another
-- size leaves `vec` empty and is scored in process.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'vector') THEN
        BEGIN
            CREATE EXTENSION IF NOT EXISTS vector;
            ALTER TABLE server_embeddings ADD COLUMN vec vector(384);
            CREATE INDEX server_embeddings_vec_idx ON server_embeddings USING hnsw (vec vector_cosine_ops);
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE NOTICE 'pgvector is available but may not be created by this role: vectors are scored in process';
        END;
    END IF;
END
$$;
