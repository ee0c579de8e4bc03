"""Every registry rule, once. MCP tools and REST routes call these methods and only shape the answers."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import dns.asyncresolver

from mcplookup_mcp.core import keys, validation
from mcplookup_mcp.core.errors import (
    AuthRequired,
    ClaimExpired,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    RateLimited,
    RegistryError,
)
from mcplookup_mcp.core.metrics import (
    VERIFICATION_ATTEMPTS,
    VERIFICATION_FAILURES,
    VERIFICATION_FAILURES_BY_REASON,
    VERIFICATION_SUCCESSES,
)
from mcplookup_mcp.core.models import (
    CapabilitiesResult,
    DiscoverResult,
    DiscoveryStats,
    DnsRecord,
    GetServerResult,
    OwnershipStatus,
    RegisterResult,
    ServerOut,
    VerifyResult,
)
from mcplookup_mcp.core.next_steps import MCP, Steps
from mcplookup_mcp.core.settings import Settings
from mcplookup_mcp.core.vocab import Transport
from mcplookup_mcp.probe.verification import Outcome, check_claim_record, record_name, record_value
from mcplookup_mcp.services import auto_discovery
from mcplookup_mcp.services.discovery import DiscoveryService
from mcplookup_mcp.services.monitor import probe_policy, server_health_fields
from mcplookup_mcp.services.ratelimit import Limiter
from mcplookup_mcp.services.third_party import third_party_out
from mcplookup_mcp.store.repository import Queries, Repository, Row

# The listing fields a claimant submits and an owner may later change; the name never changes.
LISTING_FIELDS = (
    "endpoint",
    "description",
    "title",
    "transport",
    "capabilities",
    "category",
    "auth_type",
    "website_url",
    "repository_url",
    "version",
)
REGISTER_FIELDS = ("domain", "slug", *LISTING_FIELDS, "recover_ownership")
VERIFY_FIELDS = ("domain", "registration_id")

MAX_PENDING_CLAIMS_PER_DOMAIN = 20
FORGET_ENDED_CLAIMS_AFTER = timedelta(days=30)


def utcnow() -> datetime:
    return datetime.now(UTC)


class RegistryService:
    def __init__(
        self,
        repo: Repository,
        settings: Settings,
        resolver: dns.asyncresolver.Resolver,
        limiter: Limiter,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.repo = repo
        self.settings = settings
        self.resolver = resolver
        self.limiter = limiter
        self.clock = clock
        self.discovery = DiscoveryService(repo, settings)

    # registration ------------------------------------------------------------------------------------

    # Every answer that says what to do next words it with `steps`, the calling interface's names for
    # the next call (next_steps.py); MCP's tool names unless the caller passes its own.

    async def register(
        self, data: Mapping[str, Any], *, api_key: str | None, client: str, steps: Steps = MCP
    ) -> RegisterResult:
        result = await self.discovery.events.track(
            "register",
            _domain_of(data),
            lambda: self._register(data, api_key=api_key, client=client, steps=steps),
        )
        await self.discovery.marks.wrote(_domain_of(data))
        return result

    async def _register(
        self, data: Mapping[str, Any], *, api_key: str | None, client: str, steps: Steps
    ) -> RegisterResult:
        validation.reject_unknown(data, REGISTER_FIELDS)
        await self.limiter.hit("register", client, api_key=api_key)
        domain = validation.domain(data.get("domain"))
        slug = validation.slug(data.get("slug"))
        name = f"{validation.reversed_domain(domain)}/{slug}"
        discovered: dict[str, str] = {}
        if self.settings.auto_discovery:
            data, discovered = await self._auto_fill(data, domain)
        listing = self.checked_listing(data, domain, name) | {"discovered": discovered}
        recover = validation.flag(data.get("recover_ownership"), "recover_ownership")
        now = self.clock()

        async with self.repo.transaction() as q:
            await q.ensure_domain(domain)
            state = await q.lock_domain(domain)
            if state and state["verified"] and not recover:
                await self.require_key(q, api_key, domain, now, steps)
                existing = await q.get_server_by_name(name)
                if existing and existing["status"] != "deleted":
                    raise Conflict(
                        f"{name} is already listed; choose another slug, or change the listing with the "
                        "domain's API key",
                        field="slug",
                    )
                if existing:
                    await q.relist_deleted_server(listing | {"now": now})
                else:
                    await q.insert_active_server(listing | {"now": now})
                return RegisterResult(
                    status="listed",
                    name=name,
                    domain=domain,
                    discovered=discovered,
                    next_step=f"{name} is listed under the verified domain {domain}; {steps.search} to find it.",
                )
            if await q.count_pending_claims(domain, now) >= MAX_PENDING_CLAIMS_PER_DOMAIN:
                raise RateLimited(
                    f"{domain} already has {MAX_PENDING_CLAIMS_PER_DOMAIN} pending claims; verify one of them "
                    "or wait for them to expire",
                    retry_after=3600,
                )
            registration_id = keys.new_registration_id()
            token = keys.new_challenge_token()
            expires_at = now + timedelta(hours=self.settings.claim_ttl_hours)
            claim_id = await q.insert_claim(
                {
                    "domain": domain,
                    "registration_hash": keys.digest(registration_id),
                    "token": token,
                    "record_name": record_name(domain),
                    "record_value": record_value(token),
                    "server_name": name,
                    "listing": dict(listing),
                    "client": client[:100],
                    "now": now,
                    "expires_at": expires_at,
                }
            )
            await q.insert_pending_server(listing | {"claim_id": claim_id, "now": now})
        record = DnsRecord(name=record_name(domain), value=record_value(token))
        return RegisterResult(
            status="pending_verification",
            name=name,
            domain=domain,
            registration_id=registration_id,
            dns_record=record,
            expires_at=expires_at,
            discovered=discovered,
            next_step=(
                f"Publish a TXT record at {record.name} with the value {record.value}, then "
                f"{steps.verify(domain)} before {expires_at:%Y-%m-%d %H:%M} UTC. The registration_id is "
                "shown only in this answer: keep it. Until then the server is not listed."
            ),
        )

    def checked_listing(self, data: Mapping[str, Any], domain: str, name: str) -> dict[str, Any]:
        repo_url = validation.web_url(data.get("repository_url"), "repository_url")
        endpoint = validation.endpoint(data.get("endpoint"), domain, self.settings.allow_http_endpoints)
        transport = validation.choice(
            data.get("transport"), "transport", validation.TRANSPORTS, Transport.STREAMABLE_HTTP
        )
        return {
            "name": name,
            "domain": domain,
            "endpoint": endpoint,
            "transport": transport,
            "title": validation.text(data.get("title"), "title", validation.MAX_TITLE, stored=True),
            "description": validation.text(
                data.get("description"), "description", validation.MAX_DESCRIPTION, stored=True
            )
            or "",
            "version": validation.text(data.get("version"), "version", 64, stored=True),
            "capabilities": validation.capabilities(data.get("capabilities")),
            "category": validation.category(data.get("category")),
            "auth_type": validation.choice(data.get("auth_type"), "auth_type", validation.AUTH_TYPES, "none"),
            "website_url": validation.web_url(data.get("website_url"), "website_url"),
            "repository": {"url": repo_url, "source": "unknown"} if repo_url else None,
            "remotes": [{"type": transport, "url": endpoint}],
        }

    async def _auto_fill(self, data: Mapping[str, Any], domain: str) -> tuple[dict[str, Any], dict[str, str]]:
        """The submission with its empty fields filled from what the domain publishes, and the marks."""
        merged = dict(data)
        found = await self.discover_fields(domain, auto_discovery.empty_fields(merged))
        for key, (value, _source) in found.items():
            merged[key] = value
        return merged, {key: source for key, (_value, source) in found.items()}

    async def discover_fields(self, domain: str, wanted: list[str]) -> dict[str, tuple[str, str]]:
        """Of `wanted`, the fields the domain's _mcp record or server card states with a valid value:
        field -> (value, source). A value that fails the rules a submitted one meets is dropped."""
        if not wanted:
            return {}
        settings = self.settings
        found = await auto_discovery.discover_domain(
            domain,
            self.resolver,
            probe_policy(settings),
            http_timeout=min(settings.probe_timeout, 5.0),
            ca_bundle=settings.probe_ca_bundle,
        )
        checked: dict[str, tuple[str, str]] = {}
        for key in wanted:
            value = found.values.get(key)
            if value is None:
                continue
            try:
                clean = self._check_discovered(key, value, domain)
            except InvalidInput:
                continue
            if clean:
                checked[key] = (clean, found.sources[key])
        return checked

    def _check_discovered(self, key: str, value: str, domain: str) -> str | None:
        """The value as the rules for a submitted one leave it; InvalidInput when they refuse it."""
        if key == "endpoint":
            return validation.endpoint(value, domain, self.settings.allow_http_endpoints)
        if key in ("website_url", "repository_url"):
            return validation.web_url(value, key)
        limits = {"title": validation.MAX_TITLE, "description": validation.MAX_DESCRIPTION}
        return validation.text(value, key, limits.get(key, 64))

    async def require_key(
        self, q: Queries, api_key: str | None, domain: str, now: datetime, steps: Steps = MCP
    ) -> None:
        if not api_key:
            raise AuthRequired(
                f"{domain} is already verified: send its API key as 'Authorization: Bearer mcpl_...' to add "
                f"or change servers. If the key is lost or the domain changed hands, {steps.recover} and "
                "prove control with a new DNS record."
            )
        row = await q.find_api_key(keys.digest(api_key))
        if row is None or not keys.matches(api_key, row["key_hash"]):
            raise Forbidden(f"this API key is not valid for {domain}")
        if row["domain"] != domain:
            raise Forbidden(f"this API key belongs to another domain, not {domain}")
        if row["revoked_at"] is not None:
            raise Forbidden(
                f"this API key for {domain} was revoked ({row['revoked_reason'] or 'no reason given'})"
            )
        if row["expires_at"] is not None and row["expires_at"] <= now:
            raise Forbidden(f"this API key for {domain} expired on {row['expires_at']:%Y-%m-%d}")
        await q.touch_api_key(row["id"], now)

    # verification ------------------------------------------------------------------------------------

    async def verify(self, data: Mapping[str, Any], *, client: str, steps: Steps = MCP) -> VerifyResult:
        result = await self.discovery.events.track(
            "verify",
            _domain_of(data),
            lambda: self._verify(data, client=client, steps=steps),
            lambda r: r.status,
        )
        if result.verified:
            await self.discovery.marks.wrote(result.domain)
        return result

    async def _verify(self, data: Mapping[str, Any], *, client: str, steps: Steps) -> VerifyResult:
        validation.reject_unknown(data, VERIFY_FIELDS)
        domain = validation.domain(data.get("domain"))
        registration_id = data.get("registration_id")
        if not isinstance(registration_id, str) or not registration_id.startswith(keys.REGISTRATION_PREFIX):
            raise validation.refuse(
                "registration_id",
                "missing" if not registration_id else "not a registration id",
                "the mcpreg_... value of this claim",
                f"the registration_id {steps.register} returned",
            )
        if len(registration_id) > 200:
            raise validation.refuse(
                "registration_id",
                f"{len(registration_id)} characters long",
                "the mcpreg_... value of this claim, under 200 characters",
                f"the registration_id {steps.register} returned",
            )
        await self.limiter.hit("verify", client)
        reg_hash = keys.digest(registration_id)
        now = self.clock()

        async with self.repo.read() as q:
            claim = await q.get_claim_for_update(domain, reg_hash)
        claim = self._usable_claim(claim, domain, steps)
        if claim["expires_at"] <= now:
            async with self.repo.transaction() as q:
                await q.mark_claim_expired(claim["id"])
            raise ClaimExpired(
                f"this claim on {domain} expired at {claim['expires_at']:%Y-%m-%d %H:%M} UTC; "
                f"{steps.register_again} to get a new record to publish and a new registration_id"
            )

        VERIFICATION_ATTEMPTS.inc()
        # The DNS lookup happens outside any transaction: it may take seconds and must not hold locks.
        result = await check_claim_record(
            self.resolver, domain, claim["token"], mock=self.settings.mock_dns_verification
        )
        expected = DnsRecord(name=claim["record_name"], value=claim["record_value"])
        if result.outcome is not Outcome.VERIFIED:
            VERIFICATION_FAILURES.inc()
            VERIFICATION_FAILURES_BY_REASON.labels(reason=result.outcome.value).inc()
            async with self.repo.transaction() as q:
                await q.record_claim_failure(claim["id"], now, result.detail)
            return VerifyResult(
                status=result.outcome.value,
                verified=False,
                domain=domain,
                name=claim["server_name"],
                message=_failure_message(result.outcome, result.detail, expected, steps),
                retryable=True,
                attempts=claim["attempts"] + 1,
                expected_record=expected,
                found=list(result.found),
            )

        api_key = keys.new_api_key()
        async with self.repo.transaction() as q:
            await q.lock_domain(domain)
            # Re-read under the domain lock: a competing claim may have verified meanwhile.
            claim = self._usable_claim(await q.get_claim_for_update(domain, reg_hash), domain, steps)
            await q.mark_claim_verified(claim["id"], now)
            await q.void_competing_claims(domain, claim["id"])
            await q.mark_domain_verified(domain, now, "verified by DNS TXT record")
            name = await q.publish_claim_server(claim["id"], now) or claim["server_name"]
            await q.mark_domain_servers_verified(domain, now)
            await q.revoke_domain_keys(domain, now, "replaced by a new verification of the domain")
            await q.insert_api_key(domain, keys.digest(api_key), keys.display_prefix(api_key), now, None)
        VERIFICATION_SUCCESSES.inc()
        return VerifyResult(
            status="verified",
            verified=True,
            domain=domain,
            name=name,
            message=(
                f"{domain} is verified and {name} is listed. The api_key below is shown only now: store it; "
                "send it as 'Authorization: Bearer <api_key>' to add or change this domain's servers."
            ),
            retryable=False,
            attempts=claim["attempts"] + 1,
            expected_record=expected,
            found=list(result.found),
            api_key=api_key,
        )

    @staticmethod
    def _usable_claim(claim: Row | None, domain: str, steps: Steps) -> Row:
        if claim is None:
            raise NotFound(
                f"no claim on {domain} has this registration_id: use the registration_id that {steps.register} "
                f"returned for this domain (it is shown only once), or {steps.register_again}",
                field="registration_id",
            )
        if claim["status"] == "verified":
            raise Conflict(f"this claim already verified {domain}; its API key was shown in that answer")
        if claim["status"] == "voided":
            raise Conflict(
                f"another claim verified {domain} first, so this one is void; if you control the domain, "
                f"{steps.recover}"
            )
        if claim["status"] == "expired":
            raise ClaimExpired(f"this claim on {domain} expired; {steps.register_again} to start over")
        return claim

    async def expire_claims(self) -> int:
        now = self.clock()
        async with self.repo.transaction() as q:
            return await q.expire_claims(now, now - FORGET_ENDED_CLAIMS_AFTER)

    # discovery ---------------------------------------------------------------------------------------

    async def discover(
        self,
        data: Mapping[str, Any],
        *,
        transport: str,
        client: str | None = None,
        api_key: str | None = None,
    ) -> DiscoverResult:
        """`client` is the asking address (MCP, REST and the web pages pass it) and `api_key` the key it
        sent, each limited apart; without a client (an operator's own search, the CLI) there is no limit."""
        if client is not None:
            await self.limiter.hit("discover", client, api_key=api_key)
        return await self.discovery.discover(data, transport=transport)

    async def browse_capabilities(self, data: Mapping[str, Any]) -> CapabilitiesResult:
        return await self.discovery.browse_capabilities(data)

    async def stats(self) -> DiscoveryStats:
        return await self.discovery.stats()

    async def get_server(self, data: Mapping[str, Any], *, steps: Steps = MCP) -> GetServerResult:
        return await self.discovery.events.track(
            "get", _domain_of(data), lambda: self._get_server(data, steps)
        )

    async def _get_server(self, data: Mapping[str, Any], steps: Steps) -> GetServerResult:
        validation.reject_unknown(data, ("name", "domain"))
        name, domain = validation.name_or_domain(data)
        after = await self.discovery.marks.floor(_domain_of(data))
        return await self.repo.standby_read(lambda q: self._read_server(q, name, domain, steps), after=after)

    async def _read_server(
        self, q: Queries, name: str | None, domain: str | None, steps: Steps
    ) -> GetServerResult:
        if name:
            row = await q.get_server_by_name(name)
            if row is None or row["status"] != "active":
                raise NotFound(f"no listed server is named {name}; {steps.search}", field="name")
            others = (
                [r["name"] for r in await q.get_servers_by_domain(row["domain"])] if row["domain"] else []
            )
        else:
            assert domain is not None
            rows = await q.get_servers_by_domain(domain)
            if not rows:
                raise NotFound(
                    f"no listed server under {domain}; a pending claim is listed only once verified; "
                    f"{steps.search}",
                    field="domain",
                )
            row, others = rows[0], [r["name"] for r in rows]
        domain_row = await q.get_domain(row["domain"]) if row["domain"] else None
        health = await q.get_health_servers(row["name"], None)
        third_party = third_party_out(await q.third_party_of(row["id"]))
        stated = [p for p in third_party.packages if p.license or p.language]
        return GetServerResult(
            license=next((p.license for p in stated if p.license), None),
            language=next((p.language for p in stated if p.language), None),
            third_party=third_party,
            server=ServerOut.from_row(row),
            other_servers_on_domain=[n for n in others if n != row["name"]],
            ownership=OwnershipStatus.from_row(domain_row) if domain_row else None,
            **server_health_fields(health[0] if health else None),
        )

    async def ready(self) -> bool:
        async with self.repo.read() as q:
            return await q.ping()

    async def listed_server_count(self) -> int:
        async with self.repo.read() as q:
            return await q.count_listed_servers()


def _domain_of(data: Mapping[str, Any]) -> str | None:
    """The call's domain for analytics when it is a valid one (a bad one is the call's error to report),
    or the domain part of a registered server's name (com.example/mail -> example.com)."""
    raw = data.get("domain")
    if raw is None and isinstance(data.get("name"), str) and "/" in data["name"]:
        raw = ".".join(reversed(data["name"].split("/", 1)[0].split(".")))
    try:
        return validation.domain(raw) if isinstance(raw, str) and raw else None
    except RegistryError:
        return None


def _failure_message(outcome: Outcome, detail: str, expected: DnsRecord, steps: Steps) -> str:
    publish = f"publish a TXT record at {expected.name} with the value {expected.value}"
    again = steps.verify_again
    if outcome is Outcome.MISSING:
        return f"Not verified yet: {detail}. {publish[0].upper()}{publish[1:]}, wait for DNS to update, then {again}."
    if outcome is Outcome.WRONG_VALUE:
        return (
            f"Not verified: {detail}. Change it so that the value is exactly {expected.value}, then {again}."
        )
    return f"Not verified: {detail}. This is usually temporary: {again} in a minute."
