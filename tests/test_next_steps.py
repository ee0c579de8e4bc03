"""Answers name the next call in the asker's terms: REST answers a method and path, MCP answers a tool.

The same rule (publish, then verify with the domain and the registration id; claim again with
recover_ownership; search when a name is unknown) through both real transports: the app under uvicorn,
REST over HTTP and MCP through the SDK's own client.
"""

from __future__ import annotations

import httpx
from conftest import LiveServer, mcp_client
from dnsserver import ThreadedDnsServer
from registration_support import LISTING, error_text, structured

TOOLS = (
    "discover_servers",
    "get_server",
    "register_server",
    "verify_domain",
    "get_server_health",
    "update_server",
    "delete_server",
    "rotate_api_key",
    "revoke_api_key",
)


def no_tool_names(text: str) -> None:
    named = [tool for tool in TOOLS if tool in text]
    assert not named, f"a REST answer names MCP tools {named}: {text}"


def no_rest_paths(text: str) -> None:
    assert "/api/v1" not in text and "POST " not in text, f"an MCP answer names REST routes: {text}"


async def test_rest_answers_name_rest_routes(http: httpx.AsyncClient, dns: ThreadedDnsServer) -> None:
    answers: list[str] = []
    response = await http.post("/api/v1/register", json=LISTING)
    claim = response.json()
    assert response.status_code == 202
    # The route and the body the verification takes, with the claim's domain in it.
    assert (
        'POST /api/v1/verify with the body {"domain": "example.test", "registration_id": '
        in (claim["next_step"])
    )
    answers.append(claim["next_step"])

    verify = {"domain": "example.test", "registration_id": claim["registration_id"]}
    missing = (await http.post("/api/v1/verify", json=verify)).json()
    assert missing["status"] == "pending" and "then POST /api/v1/verify again" in missing["message"]
    answers.append(missing["message"])

    unknown = await http.post(
        "/api/v1/verify", json={"domain": "example.test", "registration_id": "mcpreg_" + "A" * 43}
    )
    assert unknown.status_code == 404 and "POST /api/v1/register" in unknown.json()["detail"]
    answers.append(unknown.json()["detail"])

    dns.set_txt(claim["dns_record"]["name"], claim["dns_record"]["value"])
    verified = (await http.post("/api/v1/verify", json=verify)).json()
    assert verified["verified"] is True
    answers.append(verified["message"])

    further = await http.post("/api/v1/register", json=LISTING | {"slug": "calendar"})
    assert further.status_code == 401
    assert 'POST /api/v1/register again with "recover_ownership": true' in further.json()["detail"]
    answers.append(further.json()["detail"])

    absent = await http.get("/api/v1/servers/test.example/nothing")
    assert absent.status_code == 404 and "GET /api/v1/discover" in absent.json()["detail"]
    answers.append(absent.json()["detail"])
    health = await http.get("/api/v1/health/test.example/nothing")
    assert health.status_code == 404 and "GET /api/v1/discover" in health.json()["detail"]
    answers.append(health.json()["detail"])

    owner = {"Authorization": f"Bearer {verified['api_key']}"}
    deleted = await http.delete("/api/v1/servers/test.example/mail", headers=owner)
    assert "GET /api/v1/servers/test.example/mail" in deleted.json()["message"]
    answers.append(deleted.json()["message"])
    revoked = await http.post("/api/v1/domains/example.test/keys/revoke", headers=owner)
    assert "POST /api/v1/register again" in revoked.json()["message"]
    answers.append(revoked.json()["message"])

    for text in answers:
        no_tool_names(text)


async def test_mcp_answers_name_tools(live: LiveServer, dns: ThreadedDnsServer) -> None:
    answers: list[str] = []
    async with mcp_client(live.base_url) as client:
        claim = structured(await client.call_tool("register_server", LISTING))
        assert "call verify_domain with domain=example.test and this registration_id" in claim["next_step"]
        answers.append(claim["next_step"])

        verify = {"domain": "example.test", "registration_id": claim["registration_id"]}
        missing = structured(await client.call_tool("verify_domain", verify))
        assert "then call verify_domain again" in missing["message"]
        answers.append(missing["message"])

        unknown = error_text(
            await client.call_tool(
                "verify_domain", {"domain": "example.test", "registration_id": "mcpreg_" + "A" * 43}
            )
        )
        assert "register_server" in unknown
        answers.append(unknown)

        dns.set_txt(claim["dns_record"]["name"], claim["dns_record"]["value"])
        verified = structured(await client.call_tool("verify_domain", verify))
        assert verified["verified"] is True
        answers.append(verified["message"])

        further = error_text(await client.call_tool("register_server", LISTING | {"slug": "calendar"}))
        assert "call register_server again with recover_ownership=true" in further
        answers.append(further)

        absent = error_text(await client.call_tool("get_server", {"name": "test.example/nothing"}))
        assert "search with discover_servers" in absent
        answers.append(absent)
        health = error_text(await client.call_tool("get_server_health", {"name": "test.example/nothing"}))
        assert "search with discover_servers" in health
        answers.append(health)

    async with mcp_client(live.base_url, api_key=verified["api_key"]) as owner:
        deleted = structured(await owner.call_tool("delete_server", {"name": "test.example/mail"}))
        assert "discovery or get_server" in deleted["message"]
        answers.append(deleted["message"])
        revoked = structured(await owner.call_tool("revoke_api_key", {"domain": "example.test"}))
        assert "call register_server again with recover_ownership=true" in revoked["message"]
        answers.append(revoked["message"])

    for text in answers:
        no_rest_paths(text)
