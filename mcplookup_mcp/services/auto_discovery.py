"""FEATURE_AUTO_DISCOVERY: what a domain publishes about its own MCP server, read to fill the listing
fields its owner left empty.

Two sources, both public and both chosen by the domain's owner:
- the TXT record `_mcp.<domain>` = `v=mcp1; endpoint=https://...` (the registry's own format);
- the server card `https://<domain>/.well-known/mcp/server-card.json` (server.json-shaped: name, title,
  description, version, websiteUrl, repository.url, remotes[].url; the older card form with
  `serverInfo` and `transport.endpoint` is read too).

The card is fetched by the probe layer (`probe.card_fetch`), through the SSRF guard like a probe: the name
is resolved and checked, the request goes to the checked address with the name as SNI and Host, no
redirects are followed, the body is capped.
Nothing read here is trusted: the service validates every value with the rules a submitted value meets,
and drops what fails.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import dns.asyncresolver
import structlog

from mcplookup_mcp.probe.card_fetch import fetch_card
from mcplookup_mcp.probe.dns_resolver import DnsLookupError, lookup_txt
from mcplookup_mcp.probe.ssrf import ProbePolicy
from mcplookup_mcp.probe.text_fetch import FetchFailed

log = structlog.get_logger("mcplookup.auto_discovery")

TXT_PREFIX = "_mcp."
CARD_PATH = "/.well-known/mcp/server-card.json"
MAX_CARD_BYTES = 64 * 1024
# The listing fields discovery may fill; never the name, capabilities, category or auth_type, which
# decide where and how a server is offered and stay the owner's word.
FILLABLE = ("endpoint", "title", "description", "version", "website_url", "repository_url")


@dataclass(frozen=True)
class Discovered:
    """Values found for a domain, each with where it was read (`source`)."""

    values: dict[str, str] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    problems: tuple[str, ...] = ()


def txt_name(domain: str) -> str:
    return TXT_PREFIX + domain


def card_url(domain: str) -> str:
    return f"https://{domain}{CARD_PATH}"


def parse_mcp_txt(value: str) -> dict[str, str] | None:
    """`v=mcp1; endpoint=https://...` -> {"endpoint": ...}; None when the value is not a v=mcp1 record."""
    pairs: dict[str, str] = {}
    for part in value.split(";"):
        key, sep, val = part.strip().partition("=")
        if sep and key.strip():
            pairs[key.strip().lower()] = val.strip()
    if pairs.get("v") != "mcp1":
        return None
    return {"endpoint": pairs["endpoint"]} if pairs.get("endpoint") else {}


def _text(value: object) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def card_fields(card: object) -> dict[str, str]:
    """The fillable fields a server card states (unvalidated)."""
    if not isinstance(card, dict):
        return {}
    info = card.get("serverInfo") if isinstance(card.get("serverInfo"), dict) else {}
    assert isinstance(info, dict)
    repository = card.get("repository") if isinstance(card.get("repository"), dict) else {}
    assert isinstance(repository, dict)
    endpoint = None
    remotes = card.get("remotes")
    if isinstance(remotes, list):
        urls = (_text(r.get("url")) for r in remotes if isinstance(r, dict))
        endpoint = next((u for u in urls if u), None)
    transport = card.get("transport")
    if endpoint is None and isinstance(transport, dict):
        endpoint = _text(transport.get("endpoint"))
    found = {
        "endpoint": endpoint,
        "title": _text(card.get("title")) or _text(info.get("title")),
        "description": _text(card.get("description")),
        # In the older card form the top-level version is the card format's; the server's is serverInfo's.
        "version": _text(info.get("version")) if info else _text(card.get("version")),
        "website_url": _text(card.get("websiteUrl")) or _text(info.get("websiteUrl")),
        "repository_url": _text(repository.get("url")),
    }
    return {key: value for key, value in found.items() if value is not None}


async def _read_txt(resolver: dns.asyncresolver.Resolver, domain: str) -> tuple[dict[str, str], str | None]:
    name = txt_name(domain)
    try:
        values = await lookup_txt(resolver, name)
    except DnsLookupError as exc:
        return {}, f"{name}: {exc.message}"
    for value in values:
        parsed = parse_mcp_txt(value)
        if parsed is not None:
            return parsed, None
    return {}, f"{name}: no v=mcp1 value"


async def _read_card(
    resolver: dns.asyncresolver.Resolver,
    domain: str,
    policy: ProbePolicy,
    http_timeout: float,
    ca_bundle: str | None,
) -> tuple[dict[str, str], str | None]:
    url = card_url(domain)
    try:
        body = await fetch_card(
            url, resolver, policy, read_timeout=http_timeout, max_bytes=MAX_CARD_BYTES, ca_bundle=ca_bundle
        )
    except FetchFailed as exc:
        return {}, exc.reason
    try:
        card = json.loads(body)
    except (ValueError, RecursionError):
        return {}, f"{url}: not JSON"
    return card_fields(card), None


async def discover_domain(
    domain: str,
    resolver: dns.asyncresolver.Resolver,
    policy: ProbePolicy,
    *,
    http_timeout: float,
    ca_bundle: str | None = None,
) -> Discovered:
    """Read both sources; the TXT record's endpoint wins over the card's (DNS is the stronger proof)."""
    txt, txt_problem = await _read_txt(resolver, domain)
    card, card_problem = await _read_card(resolver, domain, policy, http_timeout, ca_bundle)
    values: dict[str, str] = {}
    sources: dict[str, str] = {}
    for key, value in card.items():
        values[key], sources[key] = value, card_url(domain)
    for key, value in txt.items():
        values[key], sources[key] = value, f"dns:{txt_name(domain)}"
    problems = tuple(p for p in (txt_problem, card_problem) if p)
    if problems:
        log.info("auto-discovery found less", domain=domain, problems=list(problems))
    return Discovered(values=values, sources=sources, problems=problems)


def empty_fields(data: dict[str, Any]) -> list[str]:
    """The fillable fields a submission leaves empty."""
    return [key for key in FILLABLE if data.get(key) is None or data.get(key) == ""]
