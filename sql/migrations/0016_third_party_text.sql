-- What others publish about a server: its repository's README and its packages' registry entries (npm,
-- PyPI). Third-party text, kept apart from the owner's listing: never merged into `description`, shown
-- marked as such, and indexed at the document's lowest weight.

-- One row per source a server has: 'readme' (identifier: the repository URL) or a package registry
-- ('npm', 'pypi'; identifier: the package name). A row exists only once a fetch succeeded; a failed
-- fetch leaves the row as it was.
CREATE TABLE server_third_party (
    server_id   uuid NOT NULL REFERENCES mcp_servers (id) ON DELETE CASCADE,
    source      text NOT NULL CHECK (source IN ('readme', 'npm', 'pypi')),
    identifier  text NOT NULL,
    source_url  text NOT NULL,
    -- README: Markdown, cleaned and capped; package: the registry's description.
    body        text NOT NULL DEFAULT '',
    truncated   boolean NOT NULL DEFAULT false,
    keywords    text[] NOT NULL DEFAULT '{}',
    license     text,
    language    text,
    etag        text,
    -- When the text was last read (200), and when it was last confirmed (200 or 304).
    fetched_at  timestamptz NOT NULL,
    checked_at  timestamptz NOT NULL,
    PRIMARY KEY (server_id, source, identifier)
);

-- When each server's sources are next read, and what went wrong last time. Claimed with
-- FOR UPDATE SKIP LOCKED and a lease (next_at pushed ahead), like the prober's work.
CREATE TABLE server_third_party_schedule (
    server_id   uuid PRIMARY KEY REFERENCES mcp_servers (id) ON DELETE CASCADE,
    next_at     timestamptz NOT NULL DEFAULT now(),
    attempted_at timestamptz,
    last_error  text
);
CREATE INDEX server_third_party_schedule_due_idx ON server_third_party_schedule (next_at);

-- The 0014 document plus, marked below, third-party text at weight D (strength 0 in search_postings):
-- a word only a README or a package registry says finds the server, and ranks below any server whose
-- own name, tools or description say it.
CREATE OR REPLACE FUNCTION mcp_servers_search_vector() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    tool_names text;
    tool_descriptions text;
    camel_names text;
    name_words text;
    joined text;
    third_party text;
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
    -- Third-party text (0016): package descriptions and keywords, then the README's first 4,000
    -- characters: its opening says what the server is; the rest is mostly set-up and examples, whose
    -- every word would make the server a candidate for questions it has nothing to do with.
    SELECT coalesce(string_agg(CASE WHEN p.source = 'readme' THEN left(p.body, 4000)
                                    ELSE left(p.body, 2000) || ' ' || array_to_string(p.keywords, ' ') END,
                               ' ' ORDER BY p.source = 'readme', p.source, p.identifier), '')
      INTO third_party
      FROM server_third_party p
     WHERE p.server_id = NEW.id;
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
                                             || ' ' || search_package_words(NEW.packages, NEW.repository)), 'D')
        -- 0016: third-party text, lowest weight.
        || setweight(to_tsvector('english', third_party), 'D');
    INSERT INTO search_lexicon (word)
    SELECT w FROM unnest(tsvector_to_array(NEW.search_vector)) AS w WHERE length(w) <= 60
    ON CONFLICT DO NOTHING;
    RETURN NEW;
END
$$;
