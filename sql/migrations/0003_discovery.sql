-- Discovery at scale: published versions, transports, blocked remotes, listing timestamps, and the
-- indexes every discovery query shape needs (no sequential scan of mcp_servers at 100k rows).

-- Each published server.json version, verbatim, for /v0.1/servers/{name}/versions. No foreign key:
-- mcp_servers.name is unique only among non-pending rows (a partial index cannot be referenced).
CREATE TABLE server_versions (
    server_name  text NOT NULL,
    version      text NOT NULL,
    server_json  jsonb NOT NULL,
    is_latest    boolean NOT NULL DEFAULT false,
    status       text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'deprecated', 'deleted')),
    published_at timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (server_name, version)
);
CREATE UNIQUE INDEX server_versions_latest_idx ON server_versions (server_name) WHERE is_latest;

ALTER TABLE mcp_servers
    ADD COLUMN transports text[] NOT NULL DEFAULT '{}',
    ADD COLUMN remotes_blocked boolean NOT NULL DEFAULT false,
    ADD COLUMN listing_updated_at timestamptz NOT NULL DEFAULT now();

-- Every transport a server offers: its remotes' types and its packages' transports (stdio).
-- listing_updated_at moves only when the listing changes, never on health or trust updates.
CREATE FUNCTION mcp_servers_listing() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    SELECT coalesce(array_agg(DISTINCT t ORDER BY t), '{}')
      INTO NEW.transports
      FROM (SELECT r ->> 'type' AS t
              FROM jsonb_array_elements(CASE jsonb_typeof(NEW.remotes) WHEN 'array' THEN NEW.remotes ELSE '[]' END) AS r
            UNION ALL
            SELECT p -> 'transport' ->> 'type'
              FROM jsonb_array_elements(CASE jsonb_typeof(NEW.packages) WHEN 'array' THEN NEW.packages ELSE '[]' END) AS p
            UNION ALL
            SELECT NEW.transport) AS x
     WHERE t IS NOT NULL AND t <> '';
    IF TG_OP = 'UPDATE' AND NEW.listing_updated_at IS NOT DISTINCT FROM OLD.listing_updated_at
       AND (NEW.name, NEW.title, NEW.description, NEW.version, NEW.endpoint, NEW.transport, NEW.capabilities,
            NEW.category, NEW.auth_type, NEW.website_url, NEW.repository, NEW.packages, NEW.remotes,
            NEW.status, NEW.verified)
           IS DISTINCT FROM
           (OLD.name, OLD.title, OLD.description, OLD.version, OLD.endpoint, OLD.transport, OLD.capabilities,
            OLD.category, OLD.auth_type, OLD.website_url, OLD.repository, OLD.packages, OLD.remotes,
            OLD.status, OLD.verified) THEN
        NEW.listing_updated_at := greatest(now(), NEW.updated_at);
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER mcp_servers_listing_trg
    BEFORE INSERT OR UPDATE ON mcp_servers
    FOR EACH ROW EXECUTE FUNCTION mcp_servers_listing();

-- Every lexeme any server's document holds. Tells in microseconds whether a query word matches anything
-- (even as a prefix), and is where a misspelt word finds its spelling corrections by trigram: a table of
-- distinct words, far smaller than the servers.
CREATE TABLE search_lexicon (word text PRIMARY KEY COLLATE "C");
CREATE INDEX search_lexicon_trgm_idx ON search_lexicon USING gin (word gin_trgm_ops);

-- The name part of the document leaves out namespace words every imported name shares
-- (io.github.x/y): matching "github" or "io" says nothing about a server.
CREATE OR REPLACE FUNCTION mcp_servers_search_vector() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    tool_names text;
    tool_descriptions text;
    name_words text;
BEGIN
    SELECT coalesce(string_agg(t ->> 'name', ' '), ''), coalesce(string_agg(t ->> 'description', ' '), '')
      INTO tool_names, tool_descriptions
      FROM jsonb_array_elements(CASE jsonb_typeof(NEW.tools) WHEN 'array' THEN NEW.tools ELSE '[]' END) AS t;
    SELECT coalesce(string_agg(w, ' '), '')
      INTO name_words
      FROM regexp_split_to_table(lower(NEW.name), '[./_-]+') AS w
     WHERE w NOT IN ('io', 'com', 'org', 'net', 'dev', 'ai', 'app', 'github', 'gitlab', 'mcp', 'server');
    NEW.search_vector :=
        setweight(to_tsvector('english', name_words || ' ' || coalesce(NEW.title, '')), 'A')
        || setweight(to_tsvector('english', array_to_string(NEW.capabilities, ' ')
                                             || ' ' || coalesce(NEW.category, '')
                                             || ' ' || regexp_replace(tool_names, '[_-]+', ' ', 'g')), 'B')
        || setweight(to_tsvector('english', coalesce(NEW.description, '')), 'C')
        || setweight(to_tsvector('english', left(tool_descriptions, 20000)), 'D');
    INSERT INTO search_lexicon (word)
    SELECT w FROM unnest(tsvector_to_array(NEW.search_vector)) AS w WHERE length(w) <= 60
    ON CONFLICT DO NOTHING;
    RETURN NEW;
END
$$;
UPDATE mcp_servers SET name = name;

-- Keyset orders (name is the tie-breaker everywhere) and filters.
CREATE INDEX mcp_servers_name_idx ON mcp_servers (name);
CREATE INDEX mcp_servers_trust_name_idx ON mcp_servers (trust_score DESC, name);
CREATE INDEX mcp_servers_newest_name_idx ON mcp_servers (created_at DESC, name);
CREATE INDEX mcp_servers_latency_name_idx
    ON mcp_servers ((coalesce(avg_response_time_ms, 'Infinity'::real)), name);
CREATE INDEX mcp_servers_transports_idx ON mcp_servers USING gin (transports);
CREATE INDEX mcp_servers_domain_pattern_idx ON mcp_servers (reverse(domain) text_pattern_ops);
CREATE INDEX mcp_servers_auth_type_idx ON mcp_servers (auth_type);
CREATE INDEX mcp_servers_listing_updated_idx ON mcp_servers (listing_updated_at, name);

-- Related terms for query expansion: an everyday word (stored stemmed) -> the words servers use for it.
-- A related match counts less than the word itself; operators may add rows.
CREATE TABLE search_synonyms (
    term    text PRIMARY KEY,
    related text[] NOT NULL
);
INSERT INTO search_synonyms (term, related)
SELECT (tsvector_to_array(to_tsvector('english', word)))[1], related
  FROM (VALUES
    ('todo', ARRAY['task', 'tasks', 'todoist', 'ticktick']),
    ('task', ARRAY['todo', 'todoist', 'ticktick']),
    ('light', ARRAY['home assistant', 'smart home', 'homeassistant']),
    ('lamp', ARRAY['home assistant', 'smart home']),
    ('thermostat', ARRAY['home assistant', 'smart home']),
    ('house', ARRAY['home assistant', 'homeassistant']),
    ('music', ARRAY['spotify', 'song', 'playlist', 'audio', 'ableton']),
    ('song', ARRAY['spotify', 'music', 'playlist']),
    ('podcast', ARRAY['spotify', 'audio']),
    ('payment', ARRAY['stripe', 'paddle', 'billing', 'checkout', 'invoice']),
    ('pay', ARRAY['stripe', 'paddle', 'billing', 'payment']),
    ('invoice', ARRAY['billing', 'stripe', 'xero', 'accounting']),
    ('spreadsheet', ARRAY['sheets', 'excel', 'airtable', 'table']),
    ('file', ARRAY['filesystem', 'directory', 'folder']),
    ('folder', ARRAY['filesystem', 'directory']),
    ('disk', ARRAY['filesystem']),
    ('screenshot', ARRAY['screenshotone', 'capture', 'puppeteer', 'playwright']),
    ('tweet', ARRAY['twitter', 'x']),
    ('embedding', ARRAY['vector', 'qdrant', 'pinecone', 'chroma', 'milvus', 'rag']),
    ('vector', ARRAY['embedding', 'qdrant', 'pinecone', 'chroma', 'milvus']),
    ('cache', ARRAY['redis', 'memcached', 'momento']),
    ('crm', ARRAY['hubspot', 'salesforce', 'customer']),
    ('deal', ARRAY['hubspot', 'salesforce', 'crm']),
    ('shop', ARRAY['shopify', 'ecommerce', 'store']),
    ('store', ARRAY['shopify', 'ecommerce']),
    ('ecommerce', ARRAY['shopify']),
    ('order', ARRAY['shopify', 'ecommerce']),
    ('chart', ARRAY['graph', 'plot', 'quickchart', 'visualization']),
    ('plot', ARRAY['chart', 'graph', 'visualization']),
    ('notification', ARRAY['ntfy', 'pushover', 'notify', 'alert']),
    ('phone', ARRAY['ntfy', 'pushover', 'android', 'sms']),
    ('bookmark', ARRAY['raindrop', 'link']),
    ('train', ARRAY['railway', 'rail', 'ns']),
    ('calendar', ARRAY['event', 'schedule', 'ical']),
    ('meeting', ARRAY['calendar', 'zoom', 'event']),
    ('email', ARRAY['mail', 'gmail', 'inbox', 'mailgun']),
    ('mail', ARRAY['email', 'gmail', 'inbox']),
    ('issue', ARRAY['jira', 'linear', 'github', 'ticket', 'bug']),
    ('bug', ARRAY['jira', 'issue', 'sentry', 'ticket']),
    ('ticket', ARRAY['jira', 'issue', 'linear']),
    ('wiki', ARRAY['confluence', 'notion', 'wikipedia']),
    ('k8s', ARRAY['kubernetes']),
    ('kubernetes', ARRAY['k8s']),
    ('container', ARRAY['docker', 'kubernetes', 'podman']),
    ('postgresql', ARRAY['postgres']),
    ('stock', ARRAY['market', 'finance', 'nasdaq', 'equity']),
    ('crypto', ARRAY['cryptocurrency', 'bitcoin', 'blockchain', 'token']),
    ('bitcoin', ARRAY['crypto', 'cryptocurrency']),
    ('paper', ARRAY['academic', 'scholarly', 'arxiv', 'dblp', 'research']),
    ('academic', ARRAY['scholarly', 'paper', 'research', 'dblp']),
    ('web', ARRAY['internet', 'website']),
    ('browser', ARRAY['playwright', 'puppeteer', 'browserbase', 'chrome']),
    ('sandbox', ARRAY['e2b', 'execute', 'isolated']),
    ('message', ARRAY['chat', 'slack', 'whatsapp', 'telegram', 'discord']),
    ('chat', ARRAY['message', 'slack', 'discord', 'telegram']),
    ('note', ARRAY['obsidian', 'notion', 'notes', 'markdown']),
    ('image', ARRAY['picture', 'photo', 'flux', 'replicate']),
    ('picture', ARRAY['image', 'photo']),
    ('photo', ARRAY['image', 'picture']),
    ('weather', ARRAY['forecast', 'openweather']),
    ('forecast', ARRAY['weather'])
  ) AS v (word, related)
ON CONFLICT (term) DO NOTHING;

-- What /v0.1 lists: every stored server.json version, plus registered servers rendered in server.json
-- shape (one version each). A deleted listing shows its versions as deleted, dated by the deletion.
CREATE VIEW registry_entries AS
SELECT v.server_name AS name,
       v.version,
       v.server_json,
       v.is_latest,
       CASE WHEN s.status = 'deleted' THEN 'deleted' ELSE v.status END AS status,
       v.published_at,
       greatest(v.updated_at, CASE WHEN s.status = 'deleted' THEN s.listing_updated_at END) AS updated_at,
       coalesce(s.source, 'import') AS source,
       coalesce(s.verified, false) AS verified,
       coalesce(s.remotes_blocked, false) AS remotes_blocked
  FROM server_versions v
  LEFT JOIN mcp_servers s ON s.name = v.server_name AND s.status <> 'pending'
UNION ALL
SELECT s.name,
       coalesce(s.version, 'unversioned'),
       jsonb_strip_nulls(jsonb_build_object(
           '$schema', 'https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json',
           'name', s.name,
           'description', s.description,
           'title', s.title,
           'version', coalesce(s.version, 'unversioned'),
           'websiteUrl', s.website_url,
           'repository', s.repository,
           'remotes', CASE WHEN s.remotes <> '[]'::jsonb THEN s.remotes END,
           'packages', CASE WHEN s.packages <> '[]'::jsonb THEN s.packages END)),
       true,
       CASE WHEN s.status = 'deleted' THEN 'deleted' ELSE 'active' END,
       coalesce(s.published_at, s.created_at),
       s.listing_updated_at,
       s.source,
       s.verified,
       s.remotes_blocked
  FROM mcp_servers s
 WHERE s.source = 'register' AND s.status <> 'pending' AND (s.verified OR s.status = 'deleted')
   AND NOT EXISTS (SELECT 1 FROM server_versions v WHERE v.server_name = s.name);
