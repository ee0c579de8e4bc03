"""Shared parts of the registration tests: a listing, claims made and verified, and readings of results."""

from __future__ import annotations

from typing import Any

import httpx
import psycopg
from dnsserver import ThreadedDnsServer

from mcplookup_mcp.services.service import RegistryService

LISTING = {
    "domain": "example.test",
    "slug": "mail",
    "endpoint": "https://mcp.example.test/mcp",
    "title": "Example Mail",
    "description": "Send, search and read email in your mailbox",
    "capabilities": ["email", "search"],
    "category": "communication",
}


def structured(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return dict(result.structured_content)


def error_text(result: Any) -> str:
    assert result.is_error, result.structured_content
    return " ".join(part.text for part in result.content)


def counts(db_url: str) -> tuple[int, int, int, int]:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM domains), (SELECT count(*) FROM domain_verifications),"
            " (SELECT count(*) FROM mcp_servers), (SELECT count(*) FROM api_keys)"
        ).fetchone()
    assert row is not None
    return (row[0], row[1], row[2], row[3])


async def register_rest(http: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    response = await http.post("/api/v1/register", json=LISTING | overrides)
    assert response.status_code == 202, response.text
    return dict(response.json())


def verified_listing(base_url: str, dns: ThreadedDnsServer) -> tuple[dict[str, Any], str]:
    """LISTING registered and verified over REST: the claim and the owner's API key."""
    with httpx.Client(base_url=base_url, timeout=20) as http:
        claim = http.post("/api/v1/register", json=LISTING).json()
        dns.set_txt(claim["dns_record"]["name"], claim["dns_record"]["value"])
        verified = http.post(
            "/api/v1/verify", json={"domain": claim["domain"], "registration_id": claim["registration_id"]}
        ).json()
    assert verified["verified"] is True, verified
    return claim, verified["api_key"]


def listing(domain: str = "example.test", slug: str = "mail", **overrides: Any) -> dict[str, Any]:
    return {
        "domain": domain,
        "slug": slug,
        "endpoint": f"https://mcp.{domain}/{slug}",
        "description": "Send, search and read email in your mailbox",
        "capabilities": ["email"],
    } | overrides


async def claim_and_verify(
    service: RegistryService, dns: ThreadedDnsServer, domain: str = "example.test", **overrides: Any
) -> str:
    """Register, publish the claim's record, verify; the domain's new API key."""
    claim = await service.register(listing(domain, **overrides), api_key=None, client="t")
    assert claim.dns_record is not None and claim.registration_id is not None
    dns.set_txt(claim.dns_record.name, claim.dns_record.value)
    result = await service.verify({"domain": domain, "registration_id": claim.registration_id}, client="t")
    assert result.verified and result.api_key
    return result.api_key
