"""Register, publish on the loopback DNS server, verify, discover: through the SDK's MCP client and REST."""

from __future__ import annotations

from typing import Any

import httpx
import psycopg
from conftest import BOTH_MCP_PATHS, Clock, LiveServer, mcp_client
from dnsserver import ThreadedDnsServer
from registration_support import LISTING, counts, error_text, register_rest, structured


async def call(client: Any, tool: str, args: dict[str, Any]) -> Any:
    return await client.call_tool(tool, args)


async def test_tools_are_listed_with_schemas_and_hints(live: LiveServer) -> None:
    async with mcp_client(live.base_url) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert {"discover_servers", "get_server", "register_server", "verify_domain"} <= set(tools)
    assert tools["discover_servers"].annotations.read_only_hint is True
    assert tools["get_server"].annotations.read_only_hint is True
    assert tools["register_server"].annotations.read_only_hint is False
    for tool in tools.values():
        assert tool.output_schema is not None, tool.name
        assert tool.description and len(tool.description) > 40
    assert set(tools["register_server"].input_schema["required"]) == {
        "domain"
    }  # endpoint: or what the domain publishes


@BOTH_MCP_PATHS
async def test_register_publish_verify_discover_over_mcp(
    live: LiveServer, dns: ThreadedDnsServer, db_url: str
) -> None:
    async with mcp_client(live.base_url) as client:
        claim = structured(await call(client, "register_server", LISTING))
        assert claim["status"] == "pending_verification"
        assert claim["name"] == "test.example/mail"
        assert claim["registration_id"].startswith("mcpreg_")
        record = claim["dns_record"]
        assert record["name"] == "_mcp-verify.example.test"
        assert record["value"].startswith("mcp-verify=") and len(record["value"]) >= len("mcp-verify=") + 32

        # Not listed before verification, listed flagged with include_pending.
        found = structured(await call(client, "discover_servers", {"query": "email"}))
        assert found["count"] == 0
        pending = structured(
            await call(client, "discover_servers", {"query": "email", "include_pending": True})
        )
        assert [s["name"] for s in pending["servers"]] == ["test.example/mail"]
        assert pending["servers"][0]["pending"] is True and pending["servers"][0]["verified"] is False

        dns.set_txt(record["name"], record["value"])
        verified = structured(
            await call(
                client,
                "verify_domain",
                {"domain": "example.test", "registration_id": claim["registration_id"]},
            )
        )
        assert verified["status"] == "verified" and verified["verified"] is True
        assert verified["api_key"].startswith("mcpl_") and len(verified["api_key"]) > 40

        found = structured(await call(client, "discover_servers", {"query": "I need to send an email"}))
        assert [s["name"] for s in found["servers"]] == ["test.example/mail"]
        hit = found["servers"][0]
        assert hit["verified"] is True and hit["pending"] is False
        assert hit["endpoint"] == "https://mcp.example.test/mcp"
        assert "email" in hit["match"]["matched"]["description"]
        assert "email" in hit["match"]["matched"]["capabilities"]

        got = structured(await call(client, "get_server", {"name": "test.example/mail"}))
        assert got["server"]["title"] == "Example Mail"
        by_domain = structured(await call(client, "get_server", {"domain": "EXAMPLE.test"}))
        assert by_domain["server"]["name"] == "test.example/mail"

    # The key and the registration id are stored only as hashes.
    with psycopg.connect(db_url) as conn:
        dump = str(conn.execute("SELECT * FROM api_keys").fetchall())
        dump += str(conn.execute("SELECT * FROM domain_verifications").fetchall())
    assert verified["api_key"] not in dump and claim["registration_id"] not in dump


async def test_register_publish_verify_discover_over_rest(
    http: httpx.AsyncClient, dns: ThreadedDnsServer
) -> None:
    response = await http.post("/api/v1/register", json=LISTING)
    assert response.status_code == 202, response.text
    claim = response.json()
    dns.set_txt(claim["dns_record"]["name"], claim["dns_record"]["value"])
    response = await http.post(
        "/api/v1/verify", json={"domain": "example.test", "registration_id": claim["registration_id"]}
    )
    assert response.status_code == 200 and response.json()["verified"] is True
    response = await http.get("/api/v1/discover", params={"q": "read my mailbox", "capability": "email"})
    assert [s["name"] for s in response.json()["servers"]] == ["test.example/mail"]
    response = await http.get("/api/v1/servers/test.example%2Fmail")
    assert response.status_code == 200 and response.json()["server"]["domain"] == "example.test"
    response = await http.get("/api/v1/servers/test.example/mail")
    assert response.status_code == 200
    response = await http.get("/api/v1/domains/example.test")
    assert response.json()["server"]["name"] == "test.example/mail"
    assert "total_registered_servers 1.0" in (await http.get("/metrics")).text


async def verify_rest(
    http: httpx.AsyncClient, claim: dict[str, Any], domain: str = "example.test"
) -> httpx.Response:
    return await http.post(
        "/api/v1/verify", json={"domain": domain, "registration_id": claim["registration_id"]}
    )


async def test_missing_record_says_what_to_publish_and_counts_attempts(
    http: httpx.AsyncClient, db_url: str
) -> None:
    claim = await register_rest(http)
    for attempt in (1, 2):
        body = (await verify_rest(http, claim)).json()
        assert body["status"] == "pending" and body["verified"] is False and body["retryable"] is True
        assert body["attempts"] == attempt
        assert claim["dns_record"]["value"] in body["message"]
        assert "_mcp-verify.example.test" in body["message"]
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT attempts, last_failure, status FROM domain_verifications").fetchone()
    assert row == (2, "no TXT record at _mcp-verify.example.test", "pending")


async def test_wrong_value_shows_what_was_found(http: httpx.AsyncClient, dns: ThreadedDnsServer) -> None:
    claim = await register_rest(http)
    dns.set_txt("_mcp-verify.example.test", "mcp-verify=0000000000000000000000000000000000", "v=spf1 -all")
    body = (await verify_rest(http, claim)).json()
    assert body["status"] == "wrong_value"
    assert "mcp-verify=0000000000000000000000000000000000" in body["found"]
    assert claim["dns_record"]["value"] in body["message"]


async def test_multi_string_record_is_joined(http: httpx.AsyncClient, dns: ThreadedDnsServer) -> None:
    claim = await register_rest(http)
    value = claim["dns_record"]["value"]
    dns.set_txt("_mcp-verify.example.test", (value[:15], value[15:]))
    assert (await verify_rest(http, claim)).json()["verified"] is True


async def test_dns_timeout_is_retryable(http: httpx.AsyncClient, dns: ThreadedDnsServer) -> None:
    claim = await register_rest(http)
    dns.set_timeout("_mcp-verify.example.test")
    body = (await verify_rest(http, claim)).json()
    assert body["status"] == "dns_error" and body["retryable"] is True
    assert "timed out" in body["message"]


async def test_expired_claim_says_how_to_start_again(
    make_live: Any, dns: ThreadedDnsServer, db_url: str
) -> None:
    clock = Clock()
    live = make_live(clock=clock)
    async with httpx.AsyncClient(base_url=live.base_url) as http:
        claim = await register_rest(http)
        dns.set_txt(claim["dns_record"]["name"], claim["dns_record"]["value"])
        clock.advance(hours=73)
        response = await verify_rest(http, claim)
        assert response.status_code == 410
        assert response.headers["content-type"] == "application/problem+json"
        assert "POST /api/v1/register again" in response.json()["detail"]
        async with mcp_client(live.base_url) as client:
            text = error_text(
                await call(
                    client,
                    "verify_domain",
                    {"domain": "example.test", "registration_id": claim["registration_id"]},
                )
            )
        assert "expired" in text and "call register_server again" in text
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT status FROM domain_verifications").fetchone() == ("expired",)


async def test_takeover_attempts_fail(http: httpx.AsyncClient, dns: ThreadedDnsServer, db_url: str) -> None:
    owner = await register_rest(http)
    rival = await register_rest(http, endpoint="https://evil.example.test/mcp")
    assert owner["dns_record"]["value"] != rival["dns_record"]["value"]
    assert owner["registration_id"] != rival["registration_id"]
    # The owner publishes; the rival cannot ride on that record with its own claim...
    dns.set_txt(owner["dns_record"]["name"], owner["dns_record"]["value"])
    body = (await verify_rest(http, rival)).json()
    assert body["verified"] is False and body["status"] == "wrong_value"
    # ...nor without a registration id of its own.
    forged = {"registration_id": "mcpreg_" + "A" * 43}
    response = await verify_rest(http, forged)
    assert response.status_code == 404 and response.json()["field"] == "registration_id"
    # The owner verifies; the rival's claim is void from then on, even with its record published.
    assert (await verify_rest(http, owner)).json()["verified"] is True
    dns.set_txt(rival["dns_record"]["name"], rival["dns_record"]["value"])
    response = await verify_rest(http, rival)
    assert response.status_code == 409
    listed = (await http.get("/api/v1/servers/test.example/mail")).json()["server"]
    assert listed["endpoint"] == "https://mcp.example.test/mcp"
    with psycopg.connect(db_url) as conn:
        statuses = sorted(r[0] for r in conn.execute("SELECT status FROM domain_verifications"))
        live_keys = conn.execute("SELECT count(*) FROM api_keys WHERE revoked_at IS NULL").fetchone()
    assert statuses == ["verified", "voided"]
    assert live_keys == (1,)


async def test_further_server_under_verified_domain_needs_the_key(
    http: httpx.AsyncClient, dns: ThreadedDnsServer, db_url: str, live: LiveServer
) -> None:
    claim = await register_rest(http)
    dns.set_txt(claim["dns_record"]["name"], claim["dns_record"]["value"])
    api_key = (await verify_rest(http, claim)).json()["api_key"]
    second = LISTING | {
        "slug": "calendar",
        "endpoint": "https://cal.example.test/mcp",
        "description": "Calendar",
    }

    before = counts(db_url)
    response = await http.post("/api/v1/register", json=second)
    assert response.status_code == 401 and "API key" in response.json()["detail"]
    assert response.headers["www-authenticate"].startswith("Bearer")
    response = await http.post(
        "/api/v1/register", json=second, headers={"Authorization": "Bearer mcpl_wrong"}
    )
    assert response.status_code == 403
    assert counts(db_url) == before

    response = await http.post(
        "/api/v1/register", json=second, headers={"Authorization": f"Bearer {api_key}"}
    )
    assert response.status_code == 201 and response.json()["status"] == "listed"
    async with mcp_client(live.base_url, api_key=api_key) as client:
        third = second | {"slug": "files", "endpoint": "https://files.example.test/mcp"}
        assert structured(await call(client, "register_server", third))["status"] == "listed"
    async with mcp_client(live.base_url) as client:
        fourth = second | {"slug": "notes", "endpoint": "https://notes.example.test/mcp"}
        assert "API key" in error_text(await call(client, "register_server", fourth))
    got = (await http.get("/api/v1/domains/example.test")).json()
    assert sorted([got["server"]["name"], *got["other_servers_on_domain"]]) == [
        "test.example/calendar",
        "test.example/files",
        "test.example/mail",
    ]


async def test_rate_limit_answers_429_with_retry_after(make_live: Any, settings: Any) -> None:
    from dataclasses import replace

    live = make_live(replace(settings, rate_limit_per_minute=2))
    async with httpx.AsyncClient(base_url=live.base_url) as http:
        for _ in range(2):
            await register_rest(http)
        response = await http.post("/api/v1/register", json=LISTING)
        assert response.status_code == 429
        assert int(response.headers["retry-after"]) > 0
        assert "limit is 2 a minute" in response.json()["detail"]


async def test_expired_claims_are_swept(service: Any, clock: Clock, db_url: str) -> None:
    service.clock = clock
    await service.register(LISTING, api_key=None, client="t")
    assert await service.expire_claims() == 0
    clock.advance(hours=72, seconds=1)
    assert await service.expire_claims() == 1
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM mcp_servers").fetchone() == (0,)
        assert conn.execute("SELECT status FROM domain_verifications").fetchone() == ("expired",)
    clock.advance(days=31)
    await service.expire_claims()
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM domain_verifications").fetchone() == (0,)
