"""Hostile field contents through REST and MCP: SQL metacharacters, bidi and CJK text, IDNA confusables and
punycode, 10,000-character fields, NUL bytes. Each is stored as sent (read back equal) or refused with a
message naming the field; never a 500."""

from __future__ import annotations

import itertools
from typing import Any

import httpx
import idna
import pytest
from conftest import LiveServer, mcp_client
from dnsserver import ThreadedDnsServer
from registration_support import error_text, structured

CYRILLIC = "ехаmple.test"  # е, х and а are Cyrillic: looks like example.test, is another domain
PUNY = idna.encode(CYRILLIC).decode()

# Stored: the field values read back equal.
STORED: list[tuple[dict[str, Any], dict[str, Any]]] = [
    ({"title": "'; DROP TABLE mcp_servers; --"}, {}),
    ({"description": "%_\\ ' \" ; -- /* */ $1 :name ?"}, {}),
    (
        {
            "title": "\u202eevil\u202c 日本語 🙂",
            "description": ("Robert'); DROP TABLE domains;-- " * 60).strip(),
        },
        {},
    ),
    ({"description": "d" * 2000, "title": "t" * 200, "version": "v" * 64}, {}),
    ({"version": "1.0.0-'; --", "website_url": "https://example.test/a?q=' OR 1=1--&x=%00"}, {}),
    ({"capabilities": ["email", "a:b/c+d", "x" * 64]}, {}),
]

# Refused: (fields, the field the refusal names, words in its message).
REFUSED: list[tuple[dict[str, Any], str, str]] = [
    ({"endpoint": "https://mcp.{domain}/m\x00cp"}, "endpoint", "control characters"),
    ({"title": "nul\x00inside"}, "title", "control character '\\x00' at position 3"),
    ({"description": "bell\x07 and more"}, "description", "control character"),
    ({"version": "1.0\x00"}, "version", "control character"),
    ({"website_url": "https://example.test/\x00"}, "website_url", "control characters"),
    ({"repository_url": "https://github.com/x\x00"}, "repository_url", "control characters"),
    ({"slug": "ma\x00il"}, "slug", "slug"),
    ({"capabilities": ["e\x00mail"]}, "capabilities", "capabilities"),
    ({"capabilities": ["日本語"]}, "capabilities", "letters, digits"),
    ({"category": "comm\x00"}, "category", "category"),
    ({"description": "x" * 10_000}, "description", "at most 2000 characters"),
    ({"title": "t" * 10_000}, "title", "at most 200 characters"),
    ({"version": "v" * 10_000}, "version", "at most 64 characters"),
    ({"slug": "s" * 10_000}, "slug", "slug"),
    ({"capabilities": ["c" * 10_000]}, "capabilities", "at most 64"),
    ({"website_url": "https://example.test/" + "a" * 10_000}, "website_url", "2048"),
    # The confusable: an endpoint on the Cyrillic look-alike is not under the Latin domain claimed.
    ({"endpoint": f"https://mcp.{CYRILLIC}/mcp"}, "endpoint", f"mcp.{PUNY} is not"),
]

_domains = itertools.count()
READ_BACK = ("title", "description", "version", "website_url", "repository_url", "capabilities", "endpoint")


def _listing(domain: str, fields: dict[str, Any]) -> dict[str, Any]:
    base = {
        "domain": domain,
        "slug": "mail",
        "endpoint": f"https://mcp.{domain}/mcp",
        "description": "Send, search and read email",
    }
    return base | {k: v.format(domain=domain) if k == "endpoint" else v for k, v in fields.items()}


def _assert_read_back(server: dict[str, Any], sent: dict[str, Any], cleaned: dict[str, Any]) -> None:
    for field in READ_BACK:
        if field in sent:
            assert server[field] == cleaned.get(field, sent[field]), field


def _fresh_domain() -> str:
    return f"h{next(_domains)}.example.test"


async def _verify_rest(http: httpx.AsyncClient, dns: ThreadedDnsServer, claim: dict[str, Any]) -> str:
    dns.set_txt(claim["dns_record"]["name"], claim["dns_record"]["value"])
    response = await http.post(
        "/api/v1/verify", json={"domain": claim["domain"], "registration_id": claim["registration_id"]}
    )
    assert response.status_code == 200 and response.json()["verified"] is True, response.text
    return str(response.json()["api_key"])


async def test_over_rest(live: LiveServer, dns: ThreadedDnsServer) -> None:
    async with httpx.AsyncClient(base_url=live.base_url, timeout=20) as http:
        for sent, cleaned in STORED:
            domain = _fresh_domain()
            response = await http.post("/api/v1/register", json=_listing(domain, sent))
            assert response.status_code == 202, (sent, response.text)
            claim = response.json()
            key = await _verify_rest(http, dns, claim)
            got = await http.get(f"/api/v1/servers/{claim['name']}")
            assert got.status_code == 200, got.text
            _assert_read_back(got.json()["server"], sent, cleaned)
            # The same contents as an update, on a listing that had none of them.
            other = _fresh_domain()
            plain = (await http.post("/api/v1/register", json=_listing(other, {}))).json()
            other_key = await _verify_rest(http, dns, plain)
            response = await http.patch(
                f"/api/v1/servers/{plain['name']}",
                json=sent,
                headers={"authorization": f"Bearer {other_key}"},
            )
            assert response.status_code == 200, (sent, response.text)
            _assert_read_back(
                (await http.get(f"/api/v1/servers/{plain['name']}")).json()["server"], sent, cleaned
            )
        for fields, field, words in REFUSED:
            domain = _fresh_domain()
            response = await http.post("/api/v1/register", json=_listing(domain, fields))
            assert response.status_code == 422, (fields, response.text)
            assert response.json()["field"] == field and words in response.json()["detail"], response.text
            # And as an update of the verified listing above.
            changes = {
                k: v.format(domain=claim["domain"]) if k == "endpoint" else v for k, v in fields.items()
            }
            response = await http.patch(
                f"/api/v1/servers/{claim['name']}", json=changes, headers={"authorization": f"Bearer {key}"}
            )
            assert response.status_code == 422, (fields, response.text)
            assert response.json()["field"] == field and words in response.json()["detail"], response.text


async def test_idna_domains_over_rest(live: LiveServer, dns: ThreadedDnsServer) -> None:
    """A Unicode domain is the same claim as its punycode: stored and named in the ASCII form."""
    async with httpx.AsyncClient(base_url=live.base_url, timeout=20) as http:
        response = await http.post("/api/v1/register", json=_listing(CYRILLIC, {}))
        assert response.status_code == 202, response.text
        claim = response.json()
        assert claim["domain"] == PUNY and claim["name"] == f"test.{PUNY.removesuffix('.test')}/mail"
        assert claim["dns_record"]["name"] == f"_mcp-verify.{PUNY}"
        await _verify_rest(http, dns, claim)
        got = (await http.get(f"/api/v1/domains/{CYRILLIC}")).json()["server"]
        assert got["domain"] == PUNY and got["endpoint"] == f"https://mcp.{PUNY}/mcp"
        # The Latin look-alike is another domain, with nothing listed.
        assert (await http.get("/api/v1/domains/example.test")).status_code == 404
        # Claiming the punycode form again is the same domain: already verified, a key is needed.
        response = await http.post("/api/v1/register", json=_listing(PUNY, {"slug": "other"}))
        assert response.status_code in (401, 403, 409), response.text


@pytest.mark.parametrize("query", ["'; DROP TABLE mcp_servers; --", "nul\x00", CYRILLIC, PUNY, "日本語 🙂"])
async def test_discovery_text(live: LiveServer, query: str) -> None:
    async with httpx.AsyncClient(base_url=live.base_url, timeout=20) as http:
        response = await http.get("/api/v1/discover", params={"q": query})
        assert response.status_code == 200, response.text
        response = await http.get("/api/v1/discover", params={"q": query * 1000})
        assert response.status_code == 422 and "at most 500 characters" in response.json()["detail"]
    async with mcp_client(live.base_url) as client:
        assert not (await client.call_tool("discover_servers", {"query": query})).is_error
        assert "at most 500 characters" in error_text(
            await client.call_tool("discover_servers", {"query": query * 1000})
        )


async def test_over_mcp(live: LiveServer, dns: ThreadedDnsServer) -> None:
    async with mcp_client(live.base_url) as client:
        for sent, cleaned in STORED:
            domain = _fresh_domain()
            claim = structured(await client.call_tool("register_server", _listing(domain, sent)))
            dns.set_txt(claim["dns_record"]["name"], claim["dns_record"]["value"])
            verified = structured(
                await client.call_tool(
                    "verify_domain", {"domain": domain, "registration_id": claim["registration_id"]}
                )
            )
            assert verified["verified"] is True
            server = structured(await client.call_tool("get_server", {"name": claim["name"]}))["server"]
            _assert_read_back(server, sent, cleaned)
        for fields, field, words in REFUSED:
            text = error_text(await client.call_tool("register_server", _listing(_fresh_domain(), fields)))
            assert field in text and words in text, text
    # Updates over MCP, with the last verified domain's key.
    async with mcp_client(live.base_url, api_key=verified["api_key"]) as owner:
        for sent, cleaned in STORED:
            updated = structured(await owner.call_tool("update_server", {"name": claim["name"]} | sent))
            _assert_read_back(updated.get("server", updated), sent, cleaned)
        for fields, field, words in REFUSED:
            changes = {k: v.format(domain=domain) if k == "endpoint" else v for k, v in fields.items()}
            text = error_text(await owner.call_tool("update_server", {"name": claim["name"]} | changes))
            assert field in text and words in text, text
