-- Ownership that lasts: scheduled re-verification of verified domains, and one live key per domain.

-- When the domain's record is next due for a re-check. The re-check loop also writes a short lease here
-- when it claims a domain, so that replicas never check the same domain at the same time.
ALTER TABLE domains ADD COLUMN next_check_at timestamptz;

-- Domains ever verified are re-checked; a domain that lost verification keeps being checked so that
-- publishing the record again restores it.
CREATE INDEX domains_recheck_due_idx ON domains (next_check_at) WHERE verified_at IS NOT NULL;

-- At most one live key per domain. Verification, rotation and recovery revoke before they insert,
-- under the domain's row lock; this index makes a second live key impossible rather than unlikely.
DROP INDEX api_keys_domain_idx;
CREATE UNIQUE INDEX api_keys_one_live_per_domain_idx ON api_keys (domain) WHERE revoked_at IS NULL;
