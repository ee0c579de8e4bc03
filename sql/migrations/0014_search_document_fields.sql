-- The search document covers what is known of a server, not only what its owner wrote: the package
-- identifiers it is installed by (npm, PyPI, OCI), its repository's name, tool names written in
-- camelCase, and a name's words joined (some-tool -> sometool, as people often type a project's name).
-- A person looking for "@acme/frobnicate" or the GitHub project "frobnicate-cli" finds the server even
-- when its registry name and description say otherwise.

-- The words of a name-like text (a registry name, a package identifier, a repository path), lowercased,
-- without the namespace words every imported name shares (io.github.x/y): matching "github" or "io"
-- says nothing about a server.
CREATE FUNCTION search_name_words(t text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(string_agg(w, ' '), '')
      FROM regexp_split_to_table(lower(coalesce(t, '')), '[^[:alnum:]]+') AS w
     WHERE w <> '' AND w NOT IN ('io', 'com', 'org', 'net', 'dev', 'ai', 'app', 'github', 'gitlab', 'mcp',
                                 'server')
$$;

-- The package identifiers and the repository's path as words: "ghcr.io/acme/frob-mcp:1.2" is acme frob,
-- "https://github.com/acme/frob-cli.git" acme frob cli. A registry host before the first slash
-- (ghcr.io, docker.io) and an image tag name no server; they are left out. Capped: the JSONB is the
-- owner's text.
CREATE FUNCTION search_package_words(packages jsonb, repository jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT left(search_name_words(
               (SELECT coalesce(string_agg(
                           regexp_replace(regexp_replace(p ->> 'identifier', '^[^/@]*\.[^/]*/', ''), ':[^/]*$', ''),
                           ' '), '')
                  FROM jsonb_array_elements(CASE jsonb_typeof(packages) WHEN 'array' THEN packages ELSE '[]' END)
                       AS p
                 WHERE jsonb_typeof(p) = 'object' AND jsonb_typeof(p -> 'identifier') = 'string')
               || ' '
               || CASE WHEN jsonb_typeof(repository) = 'object' AND jsonb_typeof(repository -> 'url') = 'string'
                       THEN regexp_replace(regexp_replace(repository ->> 'url', '^[a-z+]+://[^/]*/?', ''), '\.git/?$', '')
                       ELSE '' END),
               2000)
$$;

-- Weights: A the name's words (joined too) and the title; B capabilities, category and tool names;
-- C the description; D tool descriptions, package identifiers and the repository name. Packages and
-- repositories mostly repeat the name; where they do not, they are the owner's second word for it, not
-- the name the listing goes by, so they count no more than the tools' own descriptions.
CREATE OR REPLACE FUNCTION mcp_servers_search_vector() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    tool_names text;
    tool_descriptions text;
    camel_names text;
    name_words text;
    joined text;
BEGIN
    SELECT coalesce(string_agg(t ->> 'name', ' '), ''), coalesce(string_agg(t ->> 'description', ' '), ''),
           -- A camelCase name is also kept whole: asked for as written, it is one word (gettidalchart).
           coalesce(string_agg(t ->> 'name', ' ') FILTER (WHERE t ->> 'name' ~ '[[:lower:]][[:upper:]]'), '')
      INTO tool_names, tool_descriptions, camel_names
      FROM jsonb_array_elements(CASE jsonb_typeof(NEW.tools) WHEN 'array' THEN NEW.tools ELSE '[]' END) AS t;
    name_words := search_name_words(NEW.name);
    -- The words after the namespace, joined, when there are two or three of them (google-calendar ->
    -- googlecalendar); longer names joined are words nobody types.
    SELECT CASE WHEN count(*) BETWEEN 2 AND 3 THEN string_agg(w, '') ELSE '' END
      INTO joined
      FROM regexp_split_to_table(search_name_words(substr(NEW.name, strpos(NEW.name, '/') + 1)), ' ') AS w
     WHERE w <> '';
    NEW.search_vector :=
        setweight(to_tsvector('english', name_words || ' ' || joined || ' ' || coalesce(NEW.title, '')), 'A')
        || setweight(to_tsvector('english', array_to_string(NEW.capabilities, ' ')
                                             || ' ' || coalesce(NEW.category, '')
                                             -- get_forecast, getForecast: get forecast
                                             || ' ' || regexp_replace(regexp_replace(tool_names,
                                                           '([[:lower:][:digit:]])([[:upper:]])', '\1 \2', 'g'),
                                                       '[_-]+', ' ', 'g')
                                             || ' ' || camel_names), 'B')
        || setweight(to_tsvector('english', coalesce(NEW.description, '')), 'C')
        || setweight(to_tsvector('english', left(tool_descriptions, 20000)
                                             || ' ' || search_package_words(NEW.packages, NEW.repository)), 'D');
    INSERT INTO search_lexicon (word)
    SELECT w FROM unnest(tsvector_to_array(NEW.search_vector)) AS w WHERE length(w) <= 60
    ON CONFLICT DO NOTHING;
    RETURN NEW;
END
$$;

-- The document now also reads packages and repository: a change to either re-indexes the row.
DROP TRIGGER mcp_servers_search_vector_trg ON mcp_servers;
CREATE TRIGGER mcp_servers_search_vector_trg
    BEFORE INSERT OR UPDATE OF name, title, description, capabilities, category, tools, packages, repository
    ON mcp_servers
    FOR EACH ROW EXECUTE FUNCTION mcp_servers_search_vector();

-- Existing rows: the trigger computes each document again, and the postings trigger follows.
UPDATE mcp_servers SET name = name;
