-- Each replica keeps recent discovery answers in memory (mcplookup_mcp/answer_cache.py). This sequence
-- moves whenever a change to mcp_servers can change an answer, from any replica, the importer or the
-- scheduler; a replica that reads a new value drops every answer it holds.
CREATE SEQUENCE discovery_generation;

CREATE FUNCTION mcp_servers_discovery_generation() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM nextval('discovery_generation');
    RETURN NULL;
END
$$;

-- Deferred to the end of the writing transaction, so the new value becomes visible at nearly the same
-- instant as the rows that caused it; an answer cached in that instant lives at most the cache's TTL.
CREATE CONSTRAINT TRIGGER mcp_servers_discovery_generation_insert_delete
    AFTER INSERT OR DELETE ON mcp_servers
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION mcp_servers_discovery_generation();

-- Every column an answer filters, ranks or shows, except what the prober writes (health status,
-- uptime, latency, trust score, the time of the last check): with thousands of servers probed every few
-- minutes, those change every few seconds and would keep every cache empty. They are only as fresh as
-- the last probe anyway; answers show them at most the cache's TTL later than that.
CREATE CONSTRAINT TRIGGER mcp_servers_discovery_generation_update
    AFTER UPDATE ON mcp_servers
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW
    WHEN ((OLD.name, OLD.title, OLD.description, OLD.version, OLD.domain, OLD.endpoint, OLD.transport,
           OLD.transports, OLD.capabilities, OLD.category, OLD.auth_type, OLD.website_url, OLD.repository,
           OLD.packages, OLD.remotes, OLD.remotes_blocked, OLD.source, OLD.status, OLD.verified,
           OLD.search_vector, OLD.created_at, OLD.published_at, OLD.listing_updated_at)
          IS DISTINCT FROM
          (NEW.name, NEW.title, NEW.description, NEW.version, NEW.domain, NEW.endpoint, NEW.transport,
           NEW.transports, NEW.capabilities, NEW.category, NEW.auth_type, NEW.website_url, NEW.repository,
           NEW.packages, NEW.remotes, NEW.remotes_blocked, NEW.source, NEW.status, NEW.verified,
           NEW.search_vector, NEW.created_at, NEW.published_at, NEW.listing_updated_at))
    EXECUTE FUNCTION mcp_servers_discovery_generation();
