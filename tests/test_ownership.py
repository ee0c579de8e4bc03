"""Ownership that lasts: API keys, owner-only changes, recovery, change of hands, re-verification.

Real PostgreSQL, the loopback DNS server, the app under uvicorn and the SDK's MCP client.
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import timedelta
from typing import Any

import httpx
import psycopg
import pytest
import structlog
from conftest import Clock, LiveServer, mcp_client
from dnsserver import ThreadedDnsServer
from registration_support import claim_and_verify, listing

from mcplookup_mcp.core.errors import AuthRequired, Conflict, Forbidden, InvalidInput, NotFound
from mcplookup_mcp.core.settings import ConfigError, load_settings
from mcplookup_mcp.services.ownership import OwnershipService
from mcplookup_mcp.services.service import RegistryService

RECORD = "_mcp-verify.example.test"


def snapshot(db_url: str) -> dict[str, list[str]]:
    """Every row of the ownership tables, to prove a refused call changed nothing."""
    tables = ("domains", "domain_verifications", "mcp_servers", "api_keys")
    with psycopg.connect(db_url) as conn:
        return {
            table: [r[0] for r in conn.execute(f"SELECT row_to_json(t)::text FROM {table} t ORDER BY 1")]
            for table in tables
        }


def keys_of(db_url: str, domain: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(db_url) as conn:
        return list(
            conn.execute(
                "SELECT key_hash, key_prefix, last_used_at, revoked_at, revoked_reason, expires_at"
                " FROM api_keys WHERE domain = %s ORDER BY created_at, revoked_at NULLS LAST",
                (domain,),
            )
        )


def structured(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content
    return dict(result.structured_content)


def error_text(result: Any) -> str:
    assert result.is_error, result.structured_content
    return " ".join(part.text for part in result.content)


# keys -----------------------------------------------------------------------------------------------


async def test_key_lifecycle_issue_use_rotate_expire_revoke(
    service: RegistryService, dns: ThreadedDnsServer, db_url: str, clock: Clock
) -> None:
    service.clock = clock
    owner = OwnershipService(service)
    key = await claim_and_verify(service, dns)

    # Issued once: only the SHA-256 is stored, never used yet.
    [(key_hash, prefix, last_used, revoked, _, expires)] = keys_of(db_url, "example.test")
    assert bytes(key_hash) == hashlib.sha256(key.encode()).digest()
    assert key.startswith(prefix) and len(prefix) < 12
    assert last_used is None and revoked is None and expires is None

    # Used: last_used_at is recorded.
    clock.advance(hours=1)
    await owner.update_server({"name": "test.example/mail", "title": "Mail"}, api_key=key)
    assert keys_of(db_url, "example.test")[0][2] == clock.now

    # Rotated: a new key, shown once, with an expiry; the old key is refused as revoked.
    rotated = await owner.rotate_key({"domain": "example.test", "expires_in_days": 1}, api_key=key)
    assert rotated.api_key != key and rotated.revoked_keys == 1
    assert rotated.expires_at == clock.now + timedelta(days=1)
    with pytest.raises(Forbidden, match="revoked"):
        await owner.update_server({"name": "test.example/mail", "title": "Old key"}, api_key=key)
    await owner.update_server({"name": "test.example/mail", "title": "New key"}, api_key=rotated.api_key)

    # Expired: refused once its day has passed.
    clock.advance(days=1, seconds=1)
    with pytest.raises(Forbidden, match="expired"):
        await owner.update_server({"name": "test.example/mail", "title": "Late"}, api_key=rotated.api_key)

    # Revoked by its owner: refused from then on.
    key2 = await claim_and_verify(service, dns, recover_ownership=True)
    revoked_result = await owner.revoke_key({"domain": "example.test"}, api_key=key2)
    assert revoked_result.revoked
    with pytest.raises(Forbidden, match="revoked"):
        await owner.rotate_key({"domain": "example.test"}, api_key=key2)
    with psycopg.connect(db_url) as conn:
        live = conn.execute("SELECT count(*) FROM api_keys WHERE revoked_at IS NULL").fetchone()
    assert live == (0,)


async def test_a_key_is_scoped_to_its_domain(service: RegistryService, dns: ThreadedDnsServer) -> None:
    owner = OwnershipService(service)
    await claim_and_verify(service, dns, "example.test")
    other_key = await claim_and_verify(service, dns, "other.test")
    with pytest.raises(Forbidden, match="another domain"):
        await owner.update_server({"name": "test.example/mail", "title": "Hijack"}, api_key=other_key)
    with pytest.raises(Forbidden, match="another domain"):
        await owner.delete_server({"name": "test.example/mail"}, api_key=other_key)
    with pytest.raises(Forbidden, match="another domain"):
        await owner.rotate_key({"domain": "example.test"}, api_key=other_key)
    with pytest.raises(Forbidden, match="another domain"):
        await service.register(listing(slug="calendar"), api_key=other_key, client="t")


async def test_lost_key_is_replaced_by_verifying_again(
    service: RegistryService, dns: ThreadedDnsServer, db_url: str
) -> None:
    owner = OwnershipService(service)
    lost = await claim_and_verify(service, dns)
    # Without the key, only a fresh claim proves control again.
    with pytest.raises(AuthRequired, match="recover_ownership"):
        await service.register(listing(slug="calendar"), api_key=None, client="t")
    new = await claim_and_verify(service, dns, recover_ownership=True)
    assert new != lost
    with pytest.raises(Forbidden, match="revoked"):
        await owner.update_server({"name": "test.example/mail", "title": "x"}, api_key=lost)
    await owner.update_server({"name": "test.example/mail", "title": "Recovered"}, api_key=new)
    rows = keys_of(db_url, "example.test")
    assert [r[4] for r in rows] == ["replaced by a new verification of the domain", None]


async def test_domain_changing_hands_passes_listings_and_revokes_old_keys(
    service: RegistryService, dns: ThreadedDnsServer, db_url: str
) -> None:
    owner = OwnershipService(service)
    old_key = await claim_and_verify(service, dns)
    await service.register(
        listing(slug="calendar", endpoint="https://cal.example.test/mcp"), api_key=old_key, client="t"
    )
    # The new holder of the domain publishes its own claim's record (the old record is gone with the zone).
    dns.remove(RECORD)
    new_key = await claim_and_verify(
        service, dns, recover_ownership=True, endpoint="https://new.example.test/mcp"
    )
    for name in ("test.example/mail", "test.example/calendar"):
        with pytest.raises(Forbidden, match="revoked"):
            await owner.delete_server({"name": name}, api_key=old_key)
    result = await owner.update_server(
        {"name": "test.example/calendar", "description": "The new owner's calendar"}, api_key=new_key
    )
    assert result.server.description == "The new owner's calendar"
    got = await service.get_server({"name": "test.example/mail"})
    assert got.server.endpoint == "https://new.example.test/mcp"
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM api_keys WHERE revoked_at IS NULL").fetchone() == (1,)


async def test_concurrent_verifications_leave_exactly_one_live_key(
    service: RegistryService, dns: ThreadedDnsServer, db_url: str
) -> None:
    first = await service.register(listing(), api_key=None, client="a")
    second = await service.register(
        listing(endpoint="https://other.example.test/mcp"), api_key=None, client="b"
    )
    assert first.dns_record and second.dns_record
    dns.set_txt(RECORD, first.dns_record.value, second.dns_record.value)
    results = await asyncio.gather(
        *(
            service.verify({"domain": "example.test", "registration_id": c.registration_id}, client="t")
            for c in (first, second)
        ),
        return_exceptions=True,
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    losers = [r for r in results if isinstance(r, BaseException)]
    assert len(winners) == 1 and winners[0].api_key
    assert len(losers) == 1 and isinstance(losers[0], Conflict)
    with psycopg.connect(db_url) as conn:
        live = conn.execute("SELECT key_hash FROM api_keys WHERE revoked_at IS NULL").fetchall()
        statuses = sorted(r[0] for r in conn.execute("SELECT status FROM domain_verifications"))
    assert [bytes(r[0]) for r in live] == [hashlib.sha256(winners[0].api_key.encode()).digest()]
    assert statuses == ["verified", "voided"]


# owner-only changes ---------------------------------------------------------------------------------


async def test_update_runs_the_register_rules_and_bumps_updated_at(
    service: RegistryService, dns: ThreadedDnsServer, db_url: str, clock: Clock
) -> None:
    service.clock = clock
    owner = OwnershipService(service)
    key = await claim_and_verify(service, dns)
    before = (await service.get_server({"name": "test.example/mail"})).server
    clock.advance(minutes=5)
    state = snapshot(db_url)
    with pytest.raises(InvalidInput, match=r"is not under example\.test") as bad:
        await owner.update_server(
            {"name": "test.example/mail", "endpoint": "https://evil.test/mcp"}, api_key=key
        )
    assert bad.value.field == "endpoint"
    with pytest.raises(InvalidInput, match="nothing to change was given"):
        await owner.update_server({"name": "test.example/mail"}, api_key=key)
    with pytest.raises(InvalidInput, match="unknown field"):
        await owner.update_server({"name": "test.example/mail", "domain": "evil.test"}, api_key=key)
    with pytest.raises(NotFound):
        await owner.update_server({"name": "test.example/nothing", "title": "x"}, api_key=key)
    assert snapshot(db_url) == state

    result = await owner.update_server(
        {
            "name": "test.example/mail",
            "endpoint": "https://mail.example.test/v2/mcp",
            "capabilities": ["Email", "calendar"],
        },
        api_key=key,
    )
    assert result.updated_fields == ["endpoint", "capabilities"]
    after = result.server
    assert after.endpoint == "https://mail.example.test/v2/mcp"
    assert after.remotes == [{"type": "streamable-http", "url": "https://mail.example.test/v2/mcp"}]
    assert after.capabilities == ["email", "calendar"]
    assert after.description == before.description
    assert after.updated_at == clock.now > before.updated_at
    found = await service.discover({"query": "calendar"}, transport="t")
    assert [s.name for s in found.servers] == ["test.example/mail"]


async def test_delete_keeps_the_row_and_leaves_discovery(
    service: RegistryService, dns: ThreadedDnsServer, db_url: str
) -> None:
    owner = OwnershipService(service)
    key = await claim_and_verify(service, dns)
    assert (await service.discover({"query": "email"}, transport="t")).count == 1
    result = await owner.delete_server({"name": "test.example/mail"}, api_key=key)
    assert result.status == "deleted"
    assert (await service.discover({"query": "email"}, transport="t")).count == 0
    with pytest.raises(NotFound):
        await service.get_server({"name": "test.example/mail"})
    with pytest.raises(NotFound):
        await owner.delete_server({"name": "test.example/mail"}, api_key=key)
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT status FROM mcp_servers WHERE name = 'test.example/mail'").fetchone() == (
            "deleted",
        )
    # The owner may list the name again later; the kept row comes back with the new fields.
    again = await service.register(listing(description="Mail, relaunched"), api_key=key, client="t")
    assert again.status == "listed"
    got = await service.get_server({"name": "test.example/mail"})
    assert got.server.description == "Mail, relaunched" and got.server.verified


# re-verification ------------------------------------------------------------------------------------


async def test_record_removed_grace_unverified_then_restored(
    service: RegistryService, dns: ThreadedDnsServer, clock: Clock
) -> None:
    service.clock = clock
    owner = OwnershipService(service)
    await claim_and_verify(service, dns)
    record, dns_value = RECORD, await _record_value(service)
    got = await service.get_server({"name": "test.example/mail"})
    assert got.ownership is not None and got.ownership.domain_verified
    verified_at = got.ownership.verified_at

    # Not due before the interval (24 h by default); due after it, and the record is still there.
    assert (await owner.recheck_due_domains()).checked == 0
    clock.advance(hours=24)
    summary = await owner.recheck_due_domains()
    assert summary.checked == 1 and summary.confirmed == 1
    assert (await owner.recheck_due_domains()).checked == 0  # rescheduled, not checked twice

    # The record disappears: a grace period starts, the domain stays verified and listed meanwhile.
    dns.remove(record)
    clock.advance(hours=24)
    assert (await owner.recheck_due_domains()).grace_started == 1
    own = (await service.get_server({"name": "test.example/mail"})).ownership
    assert own is not None and own.domain_verified and own.grace_until is not None
    assert own.grace_until == clock.now + timedelta(hours=72)
    assert own.status_changed_at == clock.now and dns_value in (own.status_reason or "")
    assert (await service.discover({"query": "email"}, transport="t")).count == 1

    # Grace runs out: unverified, out of default discovery, visible with date and reason.
    clock.advance(hours=24)
    assert (await owner.recheck_due_domains()).in_grace == 1
    clock.advance(hours=48)
    assert (await owner.recheck_due_domains()).unverified == 1
    got = await service.get_server({"name": "test.example/mail"})
    assert got.server.verified is False and got.ownership is not None
    assert got.ownership.domain_verified is False and got.ownership.grace_until is None
    assert got.ownership.status_changed_at == clock.now
    assert "no longer verified" in (got.ownership.status_reason or "")
    assert got.ownership.verified_at == verified_at
    assert (await service.discover({"query": "email"}, transport="t")).count == 0
    pending = await service.discover({"query": "email", "include_pending": True}, transport="t")
    assert pending.count == 0
    clock.advance(hours=24)
    assert (await owner.recheck_due_domains()).still_unverified == 1

    # The owner publishes the record again: the next check restores verification and discovery.
    dns.set_txt(record, dns_value)
    clock.advance(hours=24)
    assert (await owner.recheck_due_domains()).restored == 1
    got = await service.get_server({"name": "test.example/mail"})
    assert got.server.verified and got.ownership is not None and got.ownership.domain_verified
    assert got.ownership.verified_at == clock.now and "again" in (got.ownership.status_reason or "")
    assert (await service.discover({"query": "email"}, transport="t")).count == 1


async def test_record_back_within_grace_ends_it(
    service: RegistryService, dns: ThreadedDnsServer, clock: Clock
) -> None:
    service.clock = clock
    owner = OwnershipService(service)
    await claim_and_verify(service, dns)
    claim_value = await _record_value(service)
    dns.remove(RECORD)
    clock.advance(hours=24)
    assert (await owner.recheck_due_domains()).grace_started == 1
    dns.set_txt(RECORD, claim_value)
    clock.advance(hours=24)
    assert (await owner.recheck_due_domains()).confirmed == 1
    own = (await service.get_server({"domain": "example.test"})).ownership
    assert own is not None and own.domain_verified and own.grace_until is None
    assert "published again" in (own.status_reason or "")


async def test_dns_failure_during_recheck_changes_nothing(
    service: RegistryService, dns: ThreadedDnsServer, clock: Clock
) -> None:
    service.clock = clock
    owner = OwnershipService(service)
    await claim_and_verify(service, dns)
    before = (await service.get_server({"domain": "example.test"})).ownership
    dns.set_timeout(RECORD)
    clock.advance(hours=24)
    assert (await owner.recheck_due_domains()).inconclusive == 1
    after = (await service.get_server({"domain": "example.test"})).ownership
    assert after is not None and before is not None
    assert after.domain_verified and after.grace_until is None
    assert after.status_reason == before.status_reason


async def test_replicas_never_check_the_same_domain_twice(
    service: RegistryService, dns: ThreadedDnsServer, clock: Clock
) -> None:
    service.clock = clock
    for domain in ("a.test", "b.test", "c.test"):
        await claim_and_verify(service, dns, domain)
    clock.advance(hours=25)
    replicas = [OwnershipService(service) for _ in range(3)]
    summaries = await asyncio.gather(*(r.recheck_due_domains() for r in replicas))
    assert sum(s.checked for s in summaries) == 3


async def _record_value(service: RegistryService) -> str:
    async with service.repo.read() as q:
        claim = await q.current_verified_claim("example.test")
    assert claim is not None
    return str(claim["record_value"])


# the mock DNS switch ----------------------------------------------------------------------------------


def test_mock_dns_verification_is_refused_in_production() -> None:
    with pytest.raises(ConfigError, match="MCPLOOKUP_MOCK_DNS_VERIFICATION"):
        load_settings({"MCPLOOKUP_MOCK_DNS_VERIFICATION": "true"})
    with pytest.raises(ConfigError, match="MCPLOOKUP_REVERIFY_GRACE_HOURS"):
        load_settings({"MCPLOOKUP_REVERIFY_GRACE_HOURS": "-1"})
    staging = load_settings({"MCPLOOKUP_MOCK_DNS_VERIFICATION": "true", "MCPLOOKUP_ENV": "staging"})
    assert staging.mock_dns_verification
    assert staging.reverify_interval_hours == 24 and staging.reverify_grace_hours == 72


async def test_mock_dns_verification_accepts_any_claim_and_warns(
    make_live: Any, settings: Any, dns: ThreadedDnsServer
) -> None:
    from dataclasses import replace

    with structlog.testing.capture_logs() as logs:
        live = make_live(replace(settings, env="staging", mock_dns_verification=True))
    assert any("MCPLOOKUP_MOCK_DNS_VERIFICATION" in entry["event"] for entry in logs)
    async with httpx.AsyncClient(base_url=live.base_url) as http:
        claim = (await http.post("/api/v1/register", json=listing())).json()
        response = await http.post(
            "/api/v1/verify", json={"domain": "example.test", "registration_id": claim["registration_id"]}
        )
    assert response.json()["verified"] is True  # nothing was published


# every owner-only tool and route refuses bad keys and changes nothing -----------------------------------


async def test_owner_only_calls_refuse_bad_keys_and_change_nothing(
    make_live: Any, dns: ThreadedDnsServer, db_url: str
) -> None:
    clock = Clock()
    live: LiveServer = make_live(clock=clock)
    async with httpx.AsyncClient(base_url=live.base_url) as http:

        async def verify(domain: str) -> str:
            claim = (await http.post("/api/v1/register", json=listing(domain))).json()
            dns.set_txt(claim["dns_record"]["name"], claim["dns_record"]["value"])
            body = (
                await http.post(
                    "/api/v1/verify", json={"domain": domain, "registration_id": claim["registration_id"]}
                )
            ).json()
            return str(body["api_key"])

        revoked = await verify("example.test")
        other = await verify("other.test")
        response = await http.post(
            "/api/v1/domains/example.test/keys/rotate",
            json={"expires_in_days": 1},
            headers={"Authorization": f"Bearer {revoked}"},
        )
        assert response.status_code == 200, response.text
        expired = response.json()["api_key"]
        clock.advance(days=2)

        bad_keys: dict[str, str | None] = {
            "missing": None,
            "unknown": "mcpl_" + "x" * 43,
            "other domain": other,
            "revoked": revoked,
            "expired": expired,
        }
        calls = [
            ("PATCH", "/api/v1/servers/test.example/mail", {"title": "Defaced"}),
            ("DELETE", "/api/v1/servers/test.example%2Fmail", None),
            ("POST", "/api/v1/domains/example.test/keys/rotate", {}),
            ("POST", "/api/v1/domains/example.test/keys/revoke", None),
            ("POST", "/api/v1/register", listing(slug="calendar")),
        ]
        tools = [
            ("update_server", {"name": "test.example/mail", "title": "Defaced"}),
            ("delete_server", {"name": "test.example/mail"}),
            ("rotate_api_key", {"domain": "example.test"}),
            ("revoke_api_key", {"domain": "example.test"}),
            ("register_server", listing(slug="calendar")),
        ]
        before = snapshot(db_url)
        for label, key in bad_keys.items():
            headers = {"Authorization": f"Bearer {key}"} if key else {}
            for method, path, body in calls:
                response = await http.request(method, path, json=body, headers=headers)
                expected = 401 if key is None else 403
                assert response.status_code == expected, (label, method, path, response.text)
                assert response.headers["content-type"] == "application/problem+json"
                if key is None:
                    assert "API key" in response.json()["detail"]
                    assert response.headers["www-authenticate"].startswith("Bearer")
            async with mcp_client(live.base_url, api_key=key) as client:
                for tool, args in tools:
                    text = error_text(await client.call_tool(tool, args))
                    assert "API key" in text, (label, tool, text)
                    if label in ("revoked", "expired"):
                        assert label in text, (tool, text)
            assert snapshot(db_url) == before, label


# through the real MCP client ----------------------------------------------------------------------------


async def test_owner_tools_over_mcp(live: LiveServer, dns: ThreadedDnsServer, db_url: str) -> None:
    async with mcp_client(live.base_url) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        for name in ("update_server", "delete_server", "rotate_api_key", "revoke_api_key"):
            tool = tools[name]
            assert "Authorization: Bearer" in (tool.description or "") and tool.output_schema
            assert tool.annotations is not None and tool.annotations.read_only_hint is False
            for arg, schema in tool.input_schema["properties"].items():
                assert schema.get("description"), (name, arg)
        assert tools["delete_server"].annotations.destructive_hint is True
        claim = structured(await client.call_tool("register_server", listing()))
        dns.set_txt(claim["dns_record"]["name"], claim["dns_record"]["value"])
        key = structured(
            await client.call_tool(
                "verify_domain", {"domain": "example.test", "registration_id": claim["registration_id"]}
            )
        )["api_key"]
        text = error_text(
            await client.call_tool("update_server", {"name": "test.example/mail", "title": "x"})
        )
        assert "Authorization: Bearer mcpl_" in text

    async with mcp_client(live.base_url, api_key=key) as client:
        updated = structured(
            await client.call_tool(
                "update_server", {"name": "test.example/mail", "description": "Mail and calendar in one"}
            )
        )
        assert updated["server"]["description"] == "Mail and calendar in one"
        text = error_text(
            await client.call_tool(
                "update_server", {"name": "test.example/mail", "endpoint": "https://elsewhere.test/mcp"}
            )
        )
        assert "is not under example.test" in text
        text = error_text(await client.call_tool("update_server", {"name": "test.example/mail", "slug": "x"}))
        assert "does not take slug" in text
        got = structured(await client.call_tool("get_server", {"name": "test.example/mail"}))
        assert got["ownership"]["domain_verified"] is True and got["ownership"]["verified_at"]
        rotated = structured(await client.call_tool("rotate_api_key", {"domain": "example.test"}))
        assert rotated["api_key"].startswith("mcpl_") and rotated["api_key"] != key
        assert "revoked" in error_text(await client.call_tool("delete_server", {"name": "test.example/mail"}))

    async with mcp_client(live.base_url, api_key=rotated["api_key"]) as client:
        deleted = structured(await client.call_tool("delete_server", {"name": "test.example/mail"}))
        assert deleted["status"] == "deleted"
        found = structured(await client.call_tool("discover_servers", {"query": "mail"}))
        assert found["count"] == 0
        revoked = structured(await client.call_tool("revoke_api_key", {"domain": "example.test"}))
        assert revoked["revoked"] is True and "recover_ownership" in revoked["message"]


async def test_owner_routes_over_rest(http: httpx.AsyncClient, dns: ThreadedDnsServer) -> None:
    claim = (await http.post("/api/v1/register", json=listing())).json()
    dns.set_txt(claim["dns_record"]["name"], claim["dns_record"]["value"])
    key = (
        await http.post(
            "/api/v1/verify", json={"domain": "example.test", "registration_id": claim["registration_id"]}
        )
    ).json()["api_key"]
    auth = {"Authorization": f"Bearer {key}"}
    response = await http.patch("/api/v1/servers/test.example/mail", json={"title": "Mail"}, headers=auth)
    assert response.status_code == 200 and response.json()["server"]["title"] == "Mail"
    response = await http.patch(
        "/api/v1/servers/test.example/mail", json={"name": "test.example/other"}, headers=auth
    )
    assert response.status_code == 422 and response.json()["field"] == "name"
    response = await http.post("/api/v1/domains/example.test/keys/rotate", headers=auth)
    assert response.status_code == 200
    new_auth = {"Authorization": f"Bearer {response.json()['api_key']}"}
    assert (await http.delete("/api/v1/servers/test.example/mail", headers=auth)).status_code == 403
    assert (await http.delete("/api/v1/servers/test.example/mail", headers=new_auth)).status_code == 200
    assert (await http.get("/api/v1/servers/test.example/mail")).status_code == 404
    response = await http.post("/api/v1/domains/example.test/keys/revoke", headers=new_auth)
    assert response.status_code == 200 and response.json()["revoked"] is True


async def test_plain_key_never_reaches_database_or_logs(
    make_live: Any, dns: ThreadedDnsServer, db_url: str
) -> None:
    with structlog.testing.capture_logs() as logs:
        live = make_live()
        async with httpx.AsyncClient(base_url=live.base_url) as http:
            claim = (await http.post("/api/v1/register", json=listing())).json()
            dns.set_txt(claim["dns_record"]["name"], claim["dns_record"]["value"])
            key = (
                await http.post(
                    "/api/v1/verify",
                    json={"domain": "example.test", "registration_id": claim["registration_id"]},
                )
            ).json()["api_key"]
            auth = {"Authorization": f"Bearer {key}"}
            rotated = (await http.post("/api/v1/domains/example.test/keys/rotate", headers=auth)).json()
            await http.patch(
                "/api/v1/servers/test.example/mail",
                json={"title": "x"},
                headers={"Authorization": f"Bearer {rotated['api_key']}"},
            )
            await http.patch("/api/v1/servers/test.example/mail", json={"title": "x"}, headers=auth)
            later = (await http.get("/api/v1/servers/test.example/mail")).text
    dump = str(snapshot(db_url))
    for secret in (key, rotated["api_key"]):
        assert secret not in dump and secret not in str(logs) and secret not in later


async def test_the_app_runs_re_verification_in_the_background(
    service: RegistryService, dns: ThreadedDnsServer, make_live: Any, db_url: str, clock: Clock
) -> None:
    service.clock = clock
    await claim_and_verify(service, dns)
    dns.remove(RECORD)
    clock.advance(hours=25)
    from prometheus_client import REGISTRY

    def grace_started() -> float:
        return REGISTRY.get_sample_value("reverification_checks_total", {"outcome": "grace_started"}) or 0.0

    before = grace_started()
    make_live(clock=clock)  # the lifespan's loop checks due domains at once
    for _ in range(100):
        with psycopg.connect(db_url) as conn:
            row = conn.execute("SELECT grace_until FROM domains WHERE domain = 'example.test'").fetchone()
        if row and row[0] is not None:
            break
        await asyncio.sleep(0.05)
    assert row is not None and row[0] == clock.now + timedelta(hours=72)
    for _ in range(100):
        if grace_started() == before + 1:
            break
        await asyncio.sleep(0.05)
    assert grace_started() == before + 1


async def test_an_empty_string_clears_an_optional_field(
    service: RegistryService, dns: ThreadedDnsServer
) -> None:
    owner = OwnershipService(service)
    key = await claim_and_verify(service, dns, title="Mail", website_url="https://example.test/docs")
    result = await owner.update_server(
        {"name": "test.example/mail", "title": "", "website_url": ""}, api_key=key
    )
    assert result.server.title is None and result.server.website_url is None
    assert result.server.description == "Send, search and read email in your mailbox"


async def test_a_new_endpoint_is_unknown_until_probed_and_due_now(
    service: RegistryService, dns: ThreadedDnsServer, db_url: str
) -> None:
    owner = OwnershipService(service)
    key = await claim_and_verify(service, dns)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE mcp_servers SET health_status = 'healthy', next_probe_at = now() + interval '1 hour'"
        )
    await owner.update_server({"name": "test.example/mail", "description": "Only the text"}, api_key=key)
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT health_status, next_probe_at IS NULL FROM mcp_servers").fetchone()
    assert row == ("healthy", False)
    await owner.update_server(
        {"name": "test.example/mail", "endpoint": "https://mcp2.example.test/mcp"}, api_key=key
    )
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT health_status, next_probe_at IS NULL FROM mcp_servers").fetchone()
    assert row == ("unknown", True)
