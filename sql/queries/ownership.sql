-- lock_listed_server --
-- One listed server, locked for an owner's change
SELECT id, name, title, description, version, domain, endpoint, transport, capabilities, category, auth_type,
       website_url, repository, remotes, discovered, source, status
  FROM mcp_servers
 WHERE name = %(name)s AND status <> 'pending'
   FOR UPDATE;

-- update_server_listing --
-- An owner changes a listing's fields; updated_at moves; a new endpoint is unknown until probed, and due now
UPDATE mcp_servers
   SET title = %(title)s, description = %(description)s, version = %(version)s, endpoint = %(endpoint)s,
       transport = %(transport)s, capabilities = %(capabilities)s, category = %(category)s,
       auth_type = %(auth_type)s, website_url = %(website_url)s, repository = %(repository)s,
       remotes = %(remotes)s, discovered = %(discovered)s, updated_at = %(now)s,
       health_status = CASE WHEN endpoint IS DISTINCT FROM %(endpoint)s THEN 'unknown' ELSE health_status END,
       next_probe_at = CASE WHEN endpoint IS DISTINCT FROM %(endpoint)s THEN NULL ELSE next_probe_at END
 WHERE id = %(id)s AND status = 'active';

-- mark_server_deleted --
-- An owner deletes a listing: the row stays, marked deleted, so readers of changes learn of it
UPDATE mcp_servers SET status = 'deleted', updated_at = %(now)s
 WHERE id = %(id)s AND status = 'active';

-- relist_deleted_server --
-- The owner registers a deleted server's name again: the kept row is listed anew with the new fields
UPDATE mcp_servers
   SET title = %(title)s, description = %(description)s, version = %(version)s, endpoint = %(endpoint)s,
       transport = %(transport)s, capabilities = %(capabilities)s, category = %(category)s,
       auth_type = %(auth_type)s, website_url = %(website_url)s, repository = %(repository)s,
       remotes = %(remotes)s, discovered = %(discovered)s, status = 'active', verified = true,
       updated_at = %(now)s
 WHERE name = %(name)s AND status = 'deleted';

-- revoke_api_key --
-- Revoke one key
UPDATE api_keys SET revoked_at = %(now)s, revoked_reason = %(reason)s
 WHERE id = %(id)s AND revoked_at IS NULL;

-- claim_due_domains --
-- Take a batch of domains due for re-verification; SKIP LOCKED and the lease keep replicas apart
WITH due AS (
    SELECT d.domain, c.id AS claim_id, c.token
      FROM domains d
      JOIN LATERAL (SELECT v.id, v.token
                      FROM domain_verifications v
                     WHERE v.domain = d.domain AND v.status = 'verified'
                     ORDER BY v.verified_at DESC
                     LIMIT 1) AS c ON true
     WHERE d.verified_at IS NOT NULL
       AND coalesce(d.next_check_at, d.last_checked_at + %(interval)s, d.verified_at) <= %(now)s
     ORDER BY coalesce(d.next_check_at, d.last_checked_at + %(interval)s, d.verified_at), d.domain
     LIMIT %(limit)s
       FOR UPDATE OF d SKIP LOCKED
)
UPDATE domains d SET next_check_at = %(lease_until)s
  FROM due
 WHERE d.domain = due.domain
RETURNING d.domain, due.claim_id, due.token;

-- lock_domain_state --
-- A domain's whole verification state, locked while a re-check result is written
SELECT domain, verified, verified_at, last_checked_at, grace_until, status_reason, status_changed_at
  FROM domains
 WHERE domain = %(domain)s
   FOR UPDATE;

-- current_verified_claim --
-- The claim whose record keeps the domain verified: the latest one that verified it
SELECT id, token, record_name, record_value
  FROM domain_verifications
 WHERE domain = %(domain)s AND status = 'verified'
 ORDER BY verified_at DESC
 LIMIT 1;

-- set_domain_check --
-- Write a re-check's outcome: verification state, grace period, reason, and when to check next
UPDATE domains
   SET verified = %(verified)s, verified_at = %(verified_at)s, grace_until = %(grace_until)s,
       status_reason = %(status_reason)s, status_changed_at = %(status_changed_at)s,
       last_checked_at = %(now)s, next_check_at = %(next_check_at)s, updated_at = %(now)s
 WHERE domain = %(domain)s;

-- set_domain_servers_verified --
-- A domain's listed servers follow its verification (unverified ones leave default discovery)
UPDATE mcp_servers SET verified = %(verified)s, updated_at = %(now)s
 WHERE domain = %(domain)s AND status = 'active' AND verified <> %(verified)s;
