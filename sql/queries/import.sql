-- upsert_server_version --
-- Store one published server.json version and its status; returns whether it was created or changed (nothing when unchanged)
INSERT INTO server_versions AS v (server_name, version, server_json, status, published_at, updated_at)
VALUES (%(name)s, %(version)s, %(server_json)s, %(status)s, coalesce(%(published_at)s, %(now)s), %(now)s)
ON CONFLICT (server_name, version) DO UPDATE
   SET server_json = excluded.server_json, status = excluded.status, updated_at = excluded.updated_at
 WHERE (v.server_json, v.status) IS DISTINCT FROM (excluded.server_json, excluded.status)
RETURNING (xmax = 0) AS created;

-- verified_namespace_domain --
-- The first of the given domains that is verified here: its owner holds every name in its namespace
SELECT domain FROM domains WHERE verified AND domain = ANY(%(domains)s) ORDER BY length(domain) LIMIT 1;

-- list_server_version_names --
-- The versions stored for one server name, with which one is latest
SELECT version, is_latest FROM server_versions WHERE server_name = %(name)s;

-- set_latest_version --
-- Mark exactly one version of a server as latest; touches only rows whose flag changes
UPDATE server_versions
   SET is_latest = (version = %(version)s), updated_at = %(now)s
 WHERE server_name = %(name)s AND is_latest IS DISTINCT FROM (version = %(version)s);

-- get_listed_owner --
-- Who holds a name in the listing: the source of the non-pending row, if any
SELECT source FROM mcp_servers WHERE name = %(name)s AND status <> 'pending';

-- upsert_imported_server --
-- Insert or refresh an imported server's discovery row; returns nothing when nothing changed
INSERT INTO mcp_servers AS s
       (name, title, description, version, endpoint, transport, website_url, repository, packages,
        remotes, remotes_blocked, source, status, verified, created_at, updated_at, published_at,
        listing_updated_at)
VALUES (%(name)s, %(title)s, %(description)s, %(version)s, %(endpoint)s, %(transport)s, %(website_url)s,
        %(repository)s, %(packages)s, %(remotes)s, %(remotes_blocked)s, 'import', %(status)s, false,
        %(now)s, %(now)s, %(now)s, %(now)s)
ON CONFLICT (name) WHERE status <> 'pending' DO UPDATE
   SET title = excluded.title, description = excluded.description, version = excluded.version,
       endpoint = excluded.endpoint, transport = excluded.transport, website_url = excluded.website_url,
       repository = excluded.repository, packages = excluded.packages, remotes = excluded.remotes,
       remotes_blocked = excluded.remotes_blocked, status = excluded.status, updated_at = excluded.updated_at,
       listing_updated_at = excluded.listing_updated_at
 WHERE s.source = 'import'
   AND (s.title, s.description, s.version, s.endpoint, s.transport, s.website_url, s.repository, s.packages,
        s.remotes, s.remotes_blocked, s.status)
       IS DISTINCT FROM
       (excluded.title, excluded.description, excluded.version, excluded.endpoint, excluded.transport,
        excluded.website_url, excluded.repository, excluded.packages, excluded.remotes,
        excluded.remotes_blocked, excluded.status)
RETURNING (xmax = 0) AS created;
