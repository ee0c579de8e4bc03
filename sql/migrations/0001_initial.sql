-- The core registry: domains own verification and keys; servers are keyed by a registry-style name.
-- Runs on PostgreSQL 15 and 18. Ids come from gen_random_uuid() (core since 13), not uuid-ossp.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE domains (
    domain          text PRIMARY KEY,
    verified        boolean NOT NULL DEFAULT false,
    verified_at     timestamptz,
    last_checked_at timestamptz,
    grace_until     timestamptz,
    status_reason   text,
    status_changed_at timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT domains_domain_lower CHECK (domain = lower(domain))
);

-- One row per claim. The registration id is a secret shown once: only its SHA-256 is kept.
CREATE TABLE domain_verifications (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    domain            text NOT NULL REFERENCES domains (domain) ON DELETE CASCADE,
    registration_hash bytea NOT NULL UNIQUE,
    token             text NOT NULL,
    record_name       text NOT NULL,
    record_value      text NOT NULL,
    server_name       text NOT NULL,
    listing           jsonb NOT NULL,
    status            text NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'verified', 'voided', 'expired')),
    attempts          integer NOT NULL DEFAULT 0,
    last_attempt_at   timestamptz,
    last_failure      text,
    client            text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    expires_at        timestamptz NOT NULL,
    verified_at       timestamptz,
    CONSTRAINT domain_verifications_token_unique UNIQUE (token)
);
CREATE INDEX domain_verifications_domain_status_idx ON domain_verifications (domain, status);
CREATE INDEX domain_verifications_expires_idx ON domain_verifications (expires_at) WHERE status = 'pending';

-- Keys are stored as SHA-256 only; the plain key is shown once and never stored.
CREATE TABLE api_keys (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    domain      text NOT NULL REFERENCES domains (domain) ON DELETE CASCADE,
    key_hash    bytea NOT NULL UNIQUE,
    key_prefix  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz,
    last_used_at timestamptz,
    revoked_at  timestamptz,
    revoked_reason text
);
CREATE INDEX api_keys_domain_idx ON api_keys (domain) WHERE revoked_at IS NULL;

-- A pending claim's listing lives here too (status 'pending', claim_id set) so that discovery with
-- include_pending is one query; only non-pending rows hold a name exclusively.
CREATE TABLE mcp_servers (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name                 text NOT NULL,
    title                text,
    description          text NOT NULL DEFAULT '',
    version              text,
    domain               text REFERENCES domains (domain) ON DELETE CASCADE,
    endpoint             text,
    transport            text CHECK (transport IN ('streamable-http', 'sse', 'stdio')),
    capabilities         text[] NOT NULL DEFAULT '{}',
    category             text,
    auth_type            text NOT NULL DEFAULT 'none',
    website_url          text,
    repository           jsonb,
    packages             jsonb NOT NULL DEFAULT '[]',
    remotes              jsonb NOT NULL DEFAULT '[]',
    source               text NOT NULL CHECK (source IN ('register', 'import')),
    status               text NOT NULL CHECK (status IN ('pending', 'active', 'deleted')),
    claim_id             uuid REFERENCES domain_verifications (id) ON DELETE CASCADE,
    verified             boolean NOT NULL DEFAULT false,
    health_status        text NOT NULL DEFAULT 'unknown',
    trust_score          integer NOT NULL DEFAULT 0 CHECK (trust_score BETWEEN 0 AND 100),
    uptime_percentage    real,
    avg_response_time_ms real,
    last_health_check_at timestamptz,
    tools                jsonb NOT NULL DEFAULT '[]',
    tools_fingerprint    text,
    search_vector        tsvector NOT NULL DEFAULT ''::tsvector,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    published_at         timestamptz,
    CONSTRAINT mcp_servers_pending_has_claim CHECK ((status = 'pending') = (claim_id IS NOT NULL))
);
CREATE UNIQUE INDEX mcp_servers_name_listed_idx ON mcp_servers (name) WHERE status <> 'pending';
CREATE INDEX mcp_servers_claim_idx ON mcp_servers (claim_id) WHERE claim_id IS NOT NULL;
CREATE INDEX mcp_servers_domain_idx ON mcp_servers (domain);
CREATE INDEX mcp_servers_search_idx ON mcp_servers USING gin (search_vector);
CREATE INDEX mcp_servers_capabilities_idx ON mcp_servers USING gin (capabilities);
CREATE INDEX mcp_servers_category_idx ON mcp_servers (category);
CREATE INDEX mcp_servers_name_trgm_idx ON mcp_servers USING gin (name gin_trgm_ops);
CREATE INDEX mcp_servers_status_trust_idx ON mcp_servers (status, verified, trust_score DESC);

-- Weighted document: A name and title, B capabilities, category and tool names, C description,
-- D tool descriptions. A trigger, not a generated column: array_to_string and jsonb walks are not
-- immutable, which generated columns require.
CREATE FUNCTION mcp_servers_search_vector() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    tool_names text;
    tool_descriptions text;
BEGIN
    SELECT coalesce(string_agg(t ->> 'name', ' '), ''), coalesce(string_agg(t ->> 'description', ' '), '')
      INTO tool_names, tool_descriptions
      FROM jsonb_array_elements(CASE jsonb_typeof(NEW.tools) WHEN 'array' THEN NEW.tools ELSE '[]' END) AS t;
    NEW.search_vector :=
        setweight(to_tsvector('english', regexp_replace(NEW.name, '[./_-]+', ' ', 'g')
                                         || ' ' || coalesce(NEW.title, '')), 'A')
        || setweight(to_tsvector('english', array_to_string(NEW.capabilities, ' ')
                                             || ' ' || coalesce(NEW.category, '')
                                             || ' ' || regexp_replace(tool_names, '[_-]+', ' ', 'g')), 'B')
        || setweight(to_tsvector('english', coalesce(NEW.description, '')), 'C')
        || setweight(to_tsvector('english', left(tool_descriptions, 20000)), 'D');
    RETURN NEW;
END
$$;

CREATE TRIGGER mcp_servers_search_vector_trg
    BEFORE INSERT OR UPDATE OF name, title, description, capabilities, category, tools ON mcp_servers
    FOR EACH ROW EXECUTE FUNCTION mcp_servers_search_vector();

-- What agents asked for and how many answers they got: the raw query is not kept.
CREATE TABLE discovery_events (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    transport    text NOT NULL,
    result_count integer NOT NULL,
    duration_ms  real NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX discovery_events_created_idx ON discovery_events (created_at);
