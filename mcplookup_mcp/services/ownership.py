"""Ownership rules: owner-only changes under the domain's API key, key rotation and revocation, and the
scheduled re-verification that keeps a domain verified only while its DNS record stays published.

Registration and verification (which issue the first key and recover a lost one) live in service.py;
the key check itself is `RegistryService.require_key`, so every owner-only call refuses the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from mcplookup_mcp.core import keys, validation
from mcplookup_mcp.core.errors import Forbidden, NotFound
from mcplookup_mcp.core.models import DeleteResult, KeyResult, RevokeResult, ServerOut, UpdateResult
from mcplookup_mcp.core.next_steps import MCP, Steps
from mcplookup_mcp.probe.verification import Outcome, check_claim_record
from mcplookup_mcp.services.service import LISTING_FIELDS, RegistryService
from mcplookup_mcp.store.repository import Queries, Repository, Row

UPDATE_FIELDS = ("name", *LISTING_FIELDS)
DELETE_FIELDS = ("name",)
ROTATE_FIELDS = ("domain", "expires_in_days")
REVOKE_FIELDS = ("domain",)
MAX_KEY_DAYS = 3650

RECHECK_BATCH = 100
# A claimed domain is leased for this long: another replica may take it again only if this one died.
RECHECK_LEASE = timedelta(minutes=10)
# An inconclusive lookup (timeout, SERVFAIL) changes nothing and is retried sooner than a normal check.
RECHECK_AFTER_DNS_ERROR = timedelta(hours=1)


@dataclass(frozen=True)
class RecheckSummary:
    checked: int = 0
    confirmed: int = 0
    grace_started: int = 0
    in_grace: int = 0
    unverified: int = 0
    still_unverified: int = 0
    restored: int = 0
    inconclusive: int = 0


class OwnershipService:
    def __init__(self, registry: RegistryService) -> None:
        self.registry = registry

    @property
    def repo(self) -> Repository:
        return self.registry.repo

    def _now(self) -> datetime:
        return self.registry.clock()

    # owner-only changes -----------------------------------------------------------------------------

    # `steps`: the calling interface's names for the next call (next_steps.py), as in service.py.

    async def update_server(
        self, data: Mapping[str, Any], *, api_key: str | None, steps: Steps = MCP
    ) -> UpdateResult:
        validation.reject_unknown(data, UPDATE_FIELDS)
        name = validation.server_name(data.get("name"))
        changed = [field for field in LISTING_FIELDS if field in data]
        if not changed:
            raise validation.refuse(
                "name",
                "nothing to change was given",
                f"name and at least one of {', '.join(LISTING_FIELDS)}",
                "the fields to change with their new values",
            )
        now = self._now()
        async with self.repo.transaction() as q:
            row = await self._owned_server(q, name, api_key, now, steps)
            merged = _listing_input(row) | {field: data[field] for field in changed}
            listing = self.registry.checked_listing(merged, row["domain"], name)
            # A field the owner now states is the owner's word, no longer a discovered one.
            kept = {k: v for k, v in (row["discovered"] or {}).items() if k not in changed}
            await q.update_server_listing(row["id"], listing | {"now": now, "discovered": kept})
            updated = await q.get_server_by_name(name)
        assert updated is not None
        await self.registry.discovery.marks.wrote(row["domain"])
        return UpdateResult(
            name=name,
            updated_fields=changed,
            server=ServerOut.from_row(updated),
            message=f"{name} is updated ({', '.join(changed)}).",
        )

    async def delete_server(
        self, data: Mapping[str, Any], *, api_key: str | None, steps: Steps = MCP
    ) -> DeleteResult:
        validation.reject_unknown(data, DELETE_FIELDS)
        name = validation.server_name(data.get("name"))
        now = self._now()
        async with self.repo.transaction() as q:
            row = await self._owned_server(q, name, api_key, now, steps)
            await q.mark_server_deleted(row["id"], now)
        await self.registry.discovery.marks.wrote(row["domain"])
        return DeleteResult(
            name=name,
            status="deleted",
            message=f"{name} is deleted: it no longer appears in discovery or {steps.server(name)}.",
        )

    async def _owned_server(
        self, q: Queries, name: str, api_key: str | None, now: datetime, steps: Steps
    ) -> Row:
        """The listed server, locked, after the caller's key proved it may change it."""
        row = await q.lock_listed_server(name)
        if row is None or row["status"] != "active":
            raise NotFound(f"no listed server is named {name}; {steps.search}", field="name")
        if row["source"] != "register" or not row["domain"]:
            raise Forbidden(
                f"{name} was imported from another registry; change it there, it has no owner key here"
            )
        await self.registry.require_key(q, api_key, row["domain"], now, steps)
        return row

    # keys -------------------------------------------------------------------------------------------

    async def rotate_key(
        self, data: Mapping[str, Any], *, api_key: str | None, steps: Steps = MCP
    ) -> KeyResult:
        validation.reject_unknown(data, ROTATE_FIELDS)
        domain = validation.domain(data.get("domain"))
        days = _key_days(data.get("expires_in_days"))
        now = self._now()
        expires_at = now + timedelta(days=days) if days else None
        new_key = keys.new_api_key()
        async with self.repo.transaction() as q:
            await q.lock_domain(domain)
            await self.registry.require_key(q, api_key, domain, now, steps)
            revoked = await q.revoke_domain_keys(domain, now, "replaced by rotate_api_key")
            await q.insert_api_key(
                domain, keys.digest(new_key), keys.display_prefix(new_key), now, expires_at
            )
        until = f" until {expires_at:%Y-%m-%d %H:%M} UTC" if expires_at else ""
        return KeyResult(
            domain=domain,
            api_key=new_key,
            key_prefix=keys.display_prefix(new_key),
            expires_at=expires_at,
            revoked_keys=revoked,
            message=(
                f"{domain} has a new API key, valid{until or ' until rotated or revoked'}; the old key no "
                "longer works. The api_key is shown only in this answer: store it now."
            ),
        )

    async def revoke_key(
        self, data: Mapping[str, Any], *, api_key: str | None, steps: Steps = MCP
    ) -> RevokeResult:
        validation.reject_unknown(data, REVOKE_FIELDS)
        domain = validation.domain(data.get("domain"))
        now = self._now()
        async with self.repo.transaction() as q:
            await q.lock_domain(domain)
            await self.registry.require_key(q, api_key, domain, now, steps)
            found = await q.find_api_key(keys.digest(api_key or ""))
            assert found is not None
            await q.revoke_api_key(found["id"], now, "revoked by the owner")
        return RevokeResult(
            domain=domain,
            revoked=True,
            message=(
                f"The API key for {domain} is revoked; {domain} now has no working key. To get a new one, "
                f"{steps.recover}, publish the new claim's record and verify it as the answer says."
            ),
        )

    # re-verification --------------------------------------------------------------------------------

    async def recheck_due_domains(self, limit: int = RECHECK_BATCH) -> RecheckSummary:
        """Re-check the record of every domain due for it; callable by hand with the service's clock."""
        settings = self.registry.settings
        interval = timedelta(hours=settings.reverify_interval_hours)
        now = self._now()
        async with self.repo.transaction() as q:
            due = await q.claim_due_domains(now, interval, now + RECHECK_LEASE, limit)
        counts = dict.fromkeys(
            (
                "confirmed",
                "grace_started",
                "in_grace",
                "unverified",
                "still_unverified",
                "restored",
                "inconclusive",
            ),
            0,
        )
        for item in due:
            # The lookup runs outside any transaction: it may take seconds and must hold no lock.
            result = await check_claim_record(
                self.registry.resolver, item["domain"], item["token"], mock=settings.mock_dns_verification
            )
            outcome = await self._record_check(
                item["domain"], item["claim_id"], result.outcome, result.detail
            )
            if outcome:
                counts[outcome] += 1
            if settings.auto_discovery and outcome in ("confirmed", "restored"):
                await self.fill_discovered(item["domain"])
        return RecheckSummary(checked=len(due), **counts)

    async def fill_discovered(self, domain: str) -> int:
        """FEATURE_AUTO_DISCOVERY on re-verification: fill the empty fields of the domain's listed servers
        from its _mcp record and server card; the endpoint is never replaced (a listed one is required)."""
        found = await self.registry.discover_fields(
            domain, ["title", "description", "version", "website_url", "repository_url"]
        )
        if not found:
            return 0
        async with self.repo.transaction() as q:
            return await q.fill_discovered_fields(
                domain,
                {key: value for key, (value, _source) in found.items()},
                {key: source for key, (_value, source) in found.items()},
                self._now(),
            )

    async def _record_check(self, domain: str, claim_id: Any, outcome: Outcome, detail: str) -> str | None:
        settings = self.registry.settings
        now = self._now()
        next_check = now + timedelta(hours=settings.reverify_interval_hours)
        async with self.repo.transaction() as q:
            state = await q.lock_domain_state(domain)
            current = await q.current_verified_claim(domain)
            if state is None or current is None or current["id"] != claim_id:
                return None  # verified again through another claim meanwhile: that result stands
            update = {
                "domain": domain,
                "now": now,
                "next_check_at": next_check,
                "verified": state["verified"],
                "verified_at": state["verified_at"],
                "grace_until": state["grace_until"],
                "status_reason": state["status_reason"],
                "status_changed_at": state["status_changed_at"],
            }
            record = current["record_name"]
            if outcome is Outcome.DNS_ERROR:
                update["next_check_at"] = min(next_check, now + RECHECK_AFTER_DNS_ERROR)
                result = "inconclusive"
            elif outcome is Outcome.VERIFIED:
                if state["verified"]:
                    if state["grace_until"] is not None:
                        update |= _change(now, f"the TXT record at {record} is published again; grace ended")
                        update["grace_until"] = None
                    result = "confirmed"
                else:
                    update |= _change(now, f"verified again: the TXT record at {record} is published again")
                    update |= {"verified": True, "verified_at": now, "grace_until": None}
                    await q.set_domain_servers_verified(domain, True, now)
                    result = "restored"
            elif not state["verified"]:
                result = "still_unverified"  # nothing changes until the record returns
            elif state["grace_until"] is None:
                grace_until = now + timedelta(hours=settings.reverify_grace_hours)
                update |= _change(
                    now,
                    f"re-check failed: {detail}; publish {current['record_value']} at {record} again before "
                    f"{grace_until:%Y-%m-%d %H:%M} UTC or the domain loses verification",
                )
                update["grace_until"] = grace_until
                # Check again when the grace period ends at the latest.
                update["next_check_at"] = min(next_check, grace_until)
                result = "grace_started"
            elif state["grace_until"] <= now:
                update |= _change(
                    now,
                    f"no longer verified: {detail} since the grace period began; its servers left default "
                    f"discovery. Publish {current['record_value']} at {record} again to recover",
                )
                update |= {"verified": False, "grace_until": None}
                await q.set_domain_servers_verified(domain, False, now)
                result = "unverified"
            else:
                update["next_check_at"] = min(next_check, state["grace_until"])
                result = "in_grace"
            await q.set_domain_check(update)
        return result


def _change(now: datetime, reason: str) -> dict[str, Any]:
    return {"status_reason": reason, "status_changed_at": now}


def _listing_input(row: Row) -> dict[str, Any]:
    """A stored listing in the shape register_server takes, so an update runs the same rules."""
    repository = row["repository"] or {}
    return {
        "endpoint": row["endpoint"],
        "description": row["description"],
        "title": row["title"],
        "transport": row["transport"],
        "capabilities": list(row["capabilities"] or []),
        "category": row["category"],
        "auth_type": row["auth_type"],
        "website_url": row["website_url"],
        "repository_url": repository.get("url"),
        "version": row["version"],
    }


def _key_days(value: object) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_KEY_DAYS:
        raise validation.refuse(
            "expires_in_days",
            f"{str(value)[:80]!r} is out of range",
            f"a whole number of days from 1 to {MAX_KEY_DAYS}",
            "a number such as 90, or leave it out for a key that lasts until rotated or revoked",
        )
    return value
