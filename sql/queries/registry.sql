-- ensure_domain --
-- Create the domain's row if it is new; a claim always belongs to a domain row
INSERT INTO domains (domain) VALUES (%(domain)s) ON CONFLICT (domain) DO NOTHING;

-- get_domain --
-- One domain's verification state
SELECT domain, verified, verified_at, last_checked_at, grace_until, status_reason, status_changed_at,
       created_at, updated_at
  FROM domains
 WHERE domain = %(domain)s;

-- lock_domain --
-- Serialise verifications of one domain: the first claim to verify wins
SELECT domain, verified FROM domains WHERE domain = %(domain)s FOR UPDATE;

-- count_pending_claims --
-- Pending, unexpired claims of a domain, to cap how many a domain may accumulate
SELECT count(*) AS n
  FROM domain_verifications
 WHERE domain = %(domain)s AND status = 'pending' AND expires_at > %(now)s;

-- insert_claim --
-- Store a new claim with its own token and record; the registration id is stored hashed
INSERT INTO domain_verifications
       (domain, registration_hash, token, record_name, record_value, server_name, listing, client,
        created_at, expires_at)
VALUES (%(domain)s, %(registration_hash)s, %(token)s, %(record_name)s, %(record_value)s, %(server_name)s,
        %(listing)s, %(client)s, %(now)s, %(expires_at)s)
RETURNING id;

-- get_claim_for_update --
-- The claim a registration id belongs to, locked for the verification attempt
SELECT id, domain, token, record_name, record_value, server_name, listing, status, attempts,
       last_failure, created_at, expires_at, verified_at
  FROM domain_verifications
 WHERE registration_hash = %(registration_hash)s AND domain = %(domain)s
   FOR UPDATE;

-- record_claim_failure --
-- Count an attempt that did not verify and keep what went wrong
UPDATE domain_verifications
   SET attempts = attempts + 1, last_attempt_at = %(now)s, last_failure = %(failure)s
 WHERE id = %(id)s;

-- mark_claim_verified --
-- The claim proved control of the domain
UPDATE domain_verifications
   SET status = 'verified', attempts = attempts + 1, last_attempt_at = %(now)s, verified_at = %(now)s,
       last_failure = NULL
 WHERE id = %(id)s;

-- void_competing_claims --
-- Once one claim verifies, every other pending claim of the domain is void
UPDATE domain_verifications
   SET status = 'voided', last_failure = 'another claim verified this domain first'
 WHERE domain = %(domain)s AND status = 'pending' AND id <> %(id)s;

-- delete_voided_pending_servers --
-- The listings of voided claims leave the registry
DELETE FROM mcp_servers s
 USING domain_verifications c
 WHERE s.claim_id = c.id AND s.status = 'pending' AND c.domain = %(domain)s AND c.status = 'voided';

-- mark_domain_verified --
-- The domain is proven: verified now, no grace period running
UPDATE domains
   SET verified = true, verified_at = %(now)s, last_checked_at = %(now)s, grace_until = NULL,
       status_reason = %(reason)s, status_changed_at = %(now)s, updated_at = %(now)s
 WHERE domain = %(domain)s;

-- mark_claim_expired --
-- A claim past its expiry can no longer verify
UPDATE domain_verifications SET status = 'expired' WHERE id = %(id)s AND status = 'pending';

-- expire_claims --
-- Every pending claim past its expiry becomes expired; returns how many
WITH expired AS (
    UPDATE domain_verifications SET status = 'expired'
     WHERE status = 'pending' AND expires_at <= %(now)s
    RETURNING id
)
SELECT count(*) AS n FROM expired;

-- delete_unlisted_pending_servers --
-- Pending listings whose claim is no longer pending leave the registry
DELETE FROM mcp_servers s
 USING domain_verifications c
 WHERE s.claim_id = c.id AND s.status = 'pending' AND c.status <> 'pending';

-- purge_old_claims --
-- Forget claims that ended long ago (expired or voided before the cutoff)
DELETE FROM domain_verifications
 WHERE status IN ('expired', 'voided') AND expires_at < %(cutoff)s;

-- insert_pending_server --
-- The listing a claim will publish, visible only with include_pending until the claim verifies
INSERT INTO mcp_servers
       (name, title, description, version, domain, endpoint, transport, capabilities, category, auth_type,
        website_url, repository, remotes, discovered, source, status, claim_id, verified, created_at,
        updated_at)
VALUES (%(name)s, %(title)s, %(description)s, %(version)s, %(domain)s, %(endpoint)s, %(transport)s,
        %(capabilities)s, %(category)s, %(auth_type)s, %(website_url)s, %(repository)s, %(remotes)s,
        %(discovered)s, 'register', 'pending', %(claim_id)s, false, %(now)s, %(now)s);

-- publish_claim_server --
-- List the verified claim's server: a new row, or the listed row of that name updated in place
WITH listed AS (
    UPDATE mcp_servers t
       SET title = p.title, description = p.description, version = p.version, endpoint = p.endpoint,
           transport = p.transport, capabilities = p.capabilities, category = p.category,
           auth_type = p.auth_type, website_url = p.website_url, repository = p.repository,
           remotes = p.remotes, discovered = p.discovered, domain = p.domain, status = 'active', verified = true,
           source = 'register',
           updated_at = %(now)s, published_at = coalesce(t.published_at, %(now)s)
      FROM mcp_servers p
     WHERE p.claim_id = %(claim_id)s AND p.status = 'pending' AND t.name = p.name AND t.status <> 'pending'
    RETURNING t.name
), promoted AS (
    UPDATE mcp_servers
       SET status = 'active', claim_id = NULL, verified = true, updated_at = %(now)s, published_at = %(now)s
     WHERE claim_id = %(claim_id)s AND status = 'pending' AND NOT EXISTS (SELECT 1 FROM listed)
    RETURNING name
)
SELECT name FROM listed UNION ALL SELECT name FROM promoted;

-- delete_claim_pending_server --
-- Drop a claim's pending row once its listing has been copied onto the listed row
DELETE FROM mcp_servers WHERE claim_id = %(claim_id)s AND status = 'pending';

-- mark_domain_servers_verified --
-- Every listed server of a verified domain is verified
UPDATE mcp_servers SET verified = true, updated_at = %(now)s
 WHERE domain = %(domain)s AND status = 'active' AND NOT verified;

-- insert_active_server --
-- List a further server under an already verified domain (the caller holds the domain's key)
INSERT INTO mcp_servers
       (name, title, description, version, domain, endpoint, transport, capabilities, category, auth_type,
        website_url, repository, remotes, discovered, source, status, verified, created_at, updated_at,
        published_at)
VALUES (%(name)s, %(title)s, %(description)s, %(version)s, %(domain)s, %(endpoint)s, %(transport)s,
        %(capabilities)s, %(category)s, %(auth_type)s, %(website_url)s, %(repository)s, %(remotes)s,
        %(discovered)s, 'register', 'active', true, %(now)s, %(now)s, %(now)s);

-- get_server_by_name --
-- One listed (or deleted) server by its registry name
SELECT
       -- include _server_columns
       s.tools, s.tools_fingerprint, s.discovered
  FROM mcp_servers s
 WHERE s.name = %(name)s AND s.status <> 'pending';

-- get_servers_by_domain --
-- The active servers of one domain, by name (a domain that lost its verification keeps them, unlisted)
SELECT
       -- include _server_columns
       s.tools, s.tools_fingerprint, s.discovered
  FROM mcp_servers s
 WHERE s.domain = %(domain)s AND s.status = 'active'
 ORDER BY s.name;

-- insert_api_key --
-- Store a new key's hash; the plain key is shown once and never stored
INSERT INTO api_keys (domain, key_hash, key_prefix, created_at, expires_at)
VALUES (%(domain)s, %(key_hash)s, %(key_prefix)s, %(now)s, %(expires_at)s)
RETURNING id;

-- revoke_domain_keys --
-- Revoke every live key of a domain
UPDATE api_keys SET revoked_at = %(now)s, revoked_reason = %(reason)s
 WHERE domain = %(domain)s AND revoked_at IS NULL;

-- find_api_key --
-- The key a hash belongs to, live or not, so a refusal can say why
SELECT id, domain, key_hash, key_prefix, created_at, expires_at, last_used_at, revoked_at, revoked_reason
  FROM api_keys
 WHERE key_hash = %(key_hash)s;

-- touch_api_key --
-- Record when a key was last used
UPDATE api_keys SET last_used_at = %(now)s WHERE id = %(id)s;

-- count_listed_servers --
-- How many servers are listed, counted as discovery_stats counts them (for the total_registered_servers gauge)
SELECT count(*) AS n FROM mcp_servers s WHERE mcp_server_listed(s);

-- ping --
-- Readiness: the database answers
SELECT 1 AS ok;

-- fill_discovered_fields --
-- Auto-discovery after a re-check: fill the empty fields of a domain's registered servers, marking each
UPDATE mcp_servers
   SET title = CASE WHEN coalesce(title, '') = '' THEN coalesce(%(title)s::text, title) ELSE title END,
       description = CASE WHEN description = '' THEN coalesce(%(description)s::text, description)
                          ELSE description END,
       version = CASE WHEN coalesce(version, '') = '' THEN coalesce(%(version)s::text, version) ELSE version END,
       website_url = CASE WHEN coalesce(website_url, '') = '' THEN coalesce(%(website_url)s::text, website_url)
                          ELSE website_url END,
       repository = CASE WHEN repository IS NULL AND %(repository_url)s::text IS NOT NULL
                         THEN jsonb_build_object('url', %(repository_url)s::text, 'source', 'unknown')
                         ELSE repository END,
       discovered = discovered || jsonb_strip_nulls(jsonb_build_object(
           'title', CASE WHEN coalesce(title, '') = '' THEN %(title_source)s::text END,
           'description', CASE WHEN description = '' THEN %(description_source)s::text END,
           'version', CASE WHEN coalesce(version, '') = '' THEN %(version_source)s::text END,
           'website_url', CASE WHEN coalesce(website_url, '') = '' THEN %(website_url_source)s::text END,
           'repository_url', CASE WHEN repository IS NULL THEN %(repository_url_source)s::text END)),
       updated_at = %(now)s
 WHERE domain = %(domain)s AND source = 'register' AND status = 'active'
   AND ((coalesce(title, '') = '' AND %(title)s::text IS NOT NULL)
        OR (description = '' AND %(description)s::text IS NOT NULL)
        OR (coalesce(version, '') = '' AND %(version)s::text IS NOT NULL)
        OR (coalesce(website_url, '') = '' AND %(website_url)s::text IS NOT NULL)
        OR (repository IS NULL AND %(repository_url)s::text IS NOT NULL));
