-- Postings ordered by field strength, for the any-term candidate pool of unfiltered searches.
--
-- The GIN index answers "which rows hold any of these words" by reading every posting list whole into
-- a bitmap before the first row comes out: a search for common words ("data", "market") read 125,000
-- row pointers on 1M servers to keep 200 of them. This table holds, for each stored lexeme, the listed
-- servers whose document holds it and the strongest field it is in, so each looked-up word yields its
-- strongest holders from one short btree range, however many servers hold it.
--
-- Only listed servers (active, and verified or imported) have postings: searches with filters, or
-- with include_pending, still use the GIN index, which applies the filters as it reads.
CREATE TABLE search_postings (
    lexeme    text COLLATE "C" NOT NULL,
    -- 3: name or title (weight A); 2: capabilities, category or tool names (B); 1: description (C);
    -- 0: tool descriptions (D)
    strength  smallint NOT NULL,
    -- No foreign key: the triggers below keep it, and checking one per posting made bulk inserts
    -- several times slower.
    server_id uuid NOT NULL
);

-- One server's postings: none unless it is listed.
CREATE FUNCTION search_postings_of(s mcp_servers) RETURNS TABLE (lexeme text, strength smallint, server_id uuid)
LANGUAGE sql IMMUTABLE AS $$
    SELECT u.lexeme,
           (SELECT max(CASE w WHEN 'A' THEN 3 WHEN 'B' THEN 2 WHEN 'C' THEN 1 ELSE 0 END)
              FROM unnest(u.weights) AS w)::smallint,
           s.id
      FROM unnest(s.search_vector) AS u (lexeme, positions, weights)
     WHERE s.status = 'active' AND (s.verified OR s.source = 'import') AND length(u.lexeme) <= 60
$$;

-- Statement-level with transition tables: an import or a bulk insert adds its postings in one
-- statement. The prober's updates (health, latency, trust) change none of the columns read here and
-- cost one comparison per row.
CREATE FUNCTION search_postings_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO search_postings (lexeme, strength, server_id)
    SELECT p.* FROM new_rows AS n, search_postings_of(n) AS p;
    RETURN NULL;
END
$$;

CREATE FUNCTION search_postings_update() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    changed uuid[];
BEGIN
    SELECT array_agg(n.id) INTO changed
      FROM new_rows AS n JOIN old_rows AS o ON o.id = n.id
     WHERE (n.search_vector, n.status, n.verified, n.source)
           IS DISTINCT FROM (o.search_vector, o.status, o.verified, o.source);
    IF changed IS NULL THEN
        RETURN NULL;
    END IF;
    DELETE FROM search_postings WHERE server_id = ANY (changed);
    INSERT INTO search_postings (lexeme, strength, server_id)
    SELECT p.* FROM new_rows AS n, search_postings_of(n) AS p WHERE n.id = ANY (changed);
    RETURN NULL;
END
$$;

CREATE FUNCTION search_postings_delete() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM search_postings WHERE server_id = ANY (ARRAY(SELECT o.id FROM old_rows AS o));
    RETURN NULL;
END
$$;

CREATE TRIGGER search_postings_insert_trg
    AFTER INSERT ON mcp_servers
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION search_postings_insert();

CREATE TRIGGER search_postings_update_trg
    AFTER UPDATE ON mcp_servers
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION search_postings_update();

CREATE TRIGGER search_postings_delete_trg
    AFTER DELETE ON mcp_servers
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION search_postings_delete();

-- Filled before its indexes are built: several times faster on a large registry.
INSERT INTO search_postings (lexeme, strength, server_id)
SELECT p.* FROM mcp_servers AS s, search_postings_of(s) AS p;
ALTER TABLE search_postings ADD PRIMARY KEY (lexeme, strength, server_id);
CREATE INDEX search_postings_server_idx ON search_postings (server_id);
