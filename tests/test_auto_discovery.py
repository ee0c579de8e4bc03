"""FEATURE_AUTO_DISCOVERY against a real DNS server and a real https server card on loopback: registration
and re-verification fill what the owner left empty, mark it as discovered, and fetch only through the
SSRF guard."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import trustme
import uvicorn
from conftest import Clock, LiveServer, mcp_client
from dnsserver import ThreadedDnsServer
from mcp_targets import write_cert
from registration_support import error_text, structured
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mcplookup_mcp.core.errors import InvalidInput
from mcplookup_mcp.core.settings import Settings
from mcplookup_mcp.probe.dns_resolver import make_resolver
from mcplookup_mcp.services.auto_discovery import card_fields, parse_mcp_txt
from mcplookup_mcp.services.ownership import OwnershipService
from mcplookup_mcp.services.ratelimit import RateLimiter
from mcplookup_mcp.services.service import RegistryService
from mcplookup_mcp.store.repository import Repository, make_pool

# The card must be at https://<domain>/..., port 443; a loopback address no other test listens on.
CARD_IP = "127.0.0.3"
DOMAIN = "example.test"
CARD_URL = f"https://{DOMAIN}/.well-known/mcp/server-card.json"
TXT_SOURCE = f"dns:_mcp.{DOMAIN}"
CARD = {
    "name": "test.example/mail",
    "title": "Example Mail",
    "description": "Send, search and read email at example.test",
    "version": "2.1.0",
    "websiteUrl": "https://example.test/mail",
    "repository": {"url": "https://github.com/example/mail", "source": "github"},
    "remotes": [{"type": "streamable-http", "url": "https://mcp.example.test/from-card"}],
}


def test_the_txt_record_format() -> None:
    assert parse_mcp_txt("v=mcp1; endpoint=https://mcp.example.com/mcp") == {
        "endpoint": "https://mcp.example.com/mcp"
    }
    assert parse_mcp_txt("V=mcp1;endpoint = https://a.example.com/x ") == {
        "endpoint": "https://a.example.com/x"
    }
    assert parse_mcp_txt("v=spf1 include:_spf.example.com") is None
    assert parse_mcp_txt("v=mcp1") == {}


def test_both_card_forms_are_read() -> None:
    assert card_fields(CARD) == {
        "endpoint": "https://mcp.example.test/from-card",
        "title": "Example Mail",
        "description": "Send, search and read email at example.test",
        "version": "2.1.0",
        "website_url": "https://example.test/mail",
        "repository_url": "https://github.com/example/mail",
    }
    older = {
        "version": "1.0",
        "serverInfo": {"name": "mail", "title": "Mail", "version": "3.0"},
        "transport": {"type": "streamable-http", "endpoint": "https://mcp.example.test/old"},
    }
    assert card_fields(older) == {
        "endpoint": "https://mcp.example.test/old",
        "title": "Mail",
        "version": "3.0",
    }
    assert card_fields(["not", "a", "card"]) == {}


@dataclass
class CardServer:
    card: dict[str, Any]
    hits: int = 0


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def ca_bundle(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture(scope="module")
def card_server(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CardServer]:
    state = CardServer(card=CARD)

    async def card(_: Request) -> Response:
        state.hits += 1
        return JSONResponse(state.card)

    app = Starlette(routes=[Route("/.well-known/mcp/server-card.json", card)])
    certfile, keyfile = write_cert(ca, Path(tmp_path_factory.mktemp("card")), "card", DOMAIN)
    sock = socket.socket(socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((CARD_IP, 443))
    config = uvicorn.Config(
        app, log_level="warning", log_config=None, ssl_certfile=certfile, ssl_keyfile=keyfile
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the card server did not start"
        time.sleep(0.01)
    yield state
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def published(dns: ThreadedDnsServer, card_server: CardServer) -> CardServer:
    dns.set_a(DOMAIN, CARD_IP)
    dns.set_txt(f"_mcp.{DOMAIN}", "v=mcp1; endpoint=https://mcp.example.test/mcp")
    card_server.card, card_server.hits = CARD, 0
    return card_server


def discovering(settings: Settings, ca_bundle: str, *, open_card_ip: bool = True) -> Settings:
    return replace(
        settings,
        auto_discovery=True,
        probe_allow_cidrs=(ipaddress.ip_network(f"{CARD_IP}/32"),) if open_card_ip else (),
        probe_ports=frozenset({443}),
        probe_ca_bundle=ca_bundle,
    )


async def _service(db_url: str, settings: Settings, clock: Clock | None = None) -> RegistryService:
    pool = make_pool(db_url, 4)
    await pool.open(wait=True)
    resolver = make_resolver(list(settings.dns_nameservers), settings.dns_timeout)
    limiter = RateLimiter(settings.rate_limit_per_minute)
    if clock is None:
        return RegistryService(Repository(pool), settings, resolver, limiter)
    return RegistryService(Repository(pool), settings, resolver, limiter, clock=clock)


async def _verify(service: RegistryService, dns: ThreadedDnsServer, data: dict[str, Any]) -> tuple[Any, str]:
    claim = await service.register(data, api_key=None, client="t")
    assert claim.dns_record is not None and claim.registration_id is not None
    dns.set_txt(claim.dns_record.name, claim.dns_record.value)
    verified = await service.verify({"domain": DOMAIN, "registration_id": claim.registration_id}, client="t")
    assert verified.verified and verified.api_key
    return claim, verified.api_key


async def test_registration_fills_what_the_owner_left_empty_and_marks_it(
    db_url: str, settings: Settings, dns: ThreadedDnsServer, published: CardServer, ca_bundle: str
) -> None:
    service = await _service(db_url, discovering(settings, ca_bundle))
    try:
        claim, key = await _verify(
            service, dns, {"domain": DOMAIN, "slug": "mail", "capabilities": ["email"]}
        )
        assert claim.discovered == {
            "endpoint": TXT_SOURCE,  # the DNS record wins over the card's remote
            "title": CARD_URL,
            "description": CARD_URL,
            "version": CARD_URL,
            "website_url": CARD_URL,
            "repository_url": CARD_URL,
        }
        assert published.hits == 1
        server = (await service.get_server({"name": "test.example/mail"})).server
        assert server.endpoint == "https://mcp.example.test/mcp"
        assert (server.title, server.version, server.website_url) == (
            "Example Mail",
            "2.1.0",
            CARD["websiteUrl"],
        )
        assert server.repository == {"url": "https://github.com/example/mail", "source": "unknown"}
        assert server.discovered == claim.discovered
        by_domain = (await service.get_server({"domain": DOMAIN})).server
        assert by_domain.discovered == claim.discovered
        # The owner's own word replaces a discovered value and its mark.
        await OwnershipService(service).update_server(
            {"name": "test.example/mail", "title": "Mail by Example"}, api_key=key
        )
        server = (await service.get_server({"name": "test.example/mail"})).server
        assert server.title == "Mail by Example" and server.discovered is not None
        assert "title" not in server.discovered
        assert server.discovered["description"] == CARD_URL
    finally:
        await service.repo.close()


async def test_what_the_owner_gave_is_kept(
    db_url: str, settings: Settings, dns: ThreadedDnsServer, published: CardServer, ca_bundle: str
) -> None:
    service = await _service(db_url, discovering(settings, ca_bundle))
    try:
        claim = await service.register(
            {
                "domain": DOMAIN,
                "slug": "mail",
                "endpoint": "https://mcp.example.test/own",
                "description": "The owner's description",
                "title": "Own title",
                "version": "1.0",
                "website_url": "https://example.test",
                "repository_url": "https://github.com/example/own",
            },
            api_key=None,
            client="t",
        )
        assert claim.discovered == {}
        assert published.hits == 0, "nothing is fetched when nothing is missing"
    finally:
        await service.repo.close()


async def test_the_card_is_fetched_only_through_the_ssrf_guard(
    db_url: str, settings: Settings, dns: ThreadedDnsServer, published: CardServer, ca_bundle: str
) -> None:
    # Without the test allowlist, example.test resolves to a loopback address: the card is not fetched.
    service = await _service(db_url, discovering(settings, ca_bundle, open_card_ip=False))
    try:
        claim = await service.register({"domain": DOMAIN, "slug": "mail"}, api_key=None, client="t")
        assert claim.discovered == {"endpoint": TXT_SOURCE}
        assert published.hits == 0
    finally:
        await service.repo.close()


async def test_a_discovered_value_that_breaks_the_rules_is_dropped(
    db_url: str, settings: Settings, dns: ThreadedDnsServer, published: CardServer, ca_bundle: str
) -> None:
    dns.remove(f"_mcp.{DOMAIN}")
    published.card = CARD | {"remotes": [{"type": "streamable-http", "url": "https://evil.example/mcp"}]}
    service = await _service(db_url, discovering(settings, ca_bundle))
    try:
        with pytest.raises(InvalidInput, match="endpoint: missing"):
            await service.register({"domain": DOMAIN, "slug": "mail"}, api_key=None, client="t")
        assert published.hits == 1
    finally:
        await service.repo.close()


async def test_without_the_feature_nothing_is_read(
    db_url: str, settings: Settings, dns: ThreadedDnsServer, published: CardServer, ca_bundle: str
) -> None:
    service = await _service(db_url, replace(discovering(settings, ca_bundle), auto_discovery=False))
    try:
        with pytest.raises(InvalidInput, match="endpoint: missing"):
            await service.register({"domain": DOMAIN, "slug": "mail"}, api_key=None, client="t")
        assert published.hits == 0
        assert (f"_mcp.{DOMAIN}", "TXT") not in dns.queries
    finally:
        await service.repo.close()


async def test_re_verification_fills_a_listed_servers_empty_fields(
    db_url: str,
    settings: Settings,
    dns: ThreadedDnsServer,
    published: CardServer,
    ca_bundle: str,
    clock: Clock,
) -> None:
    plain = await _service(db_url, replace(settings, auto_discovery=False), clock)
    try:
        await _verify(
            plain,
            dns,
            {
                "domain": DOMAIN,
                "slug": "mail",
                "endpoint": "https://mcp.example.test/mcp",
                "title": "Own title",
            },
        )
    finally:
        await plain.repo.close()
    service = await _service(db_url, discovering(settings, ca_bundle), clock)
    try:
        clock.advance(hours=settings.reverify_interval_hours + 1)
        summary = await OwnershipService(service).recheck_due_domains()
        assert summary.confirmed == 1
        server = (await service.get_server({"name": "test.example/mail"})).server
        assert server.title == "Own title" and server.endpoint == "https://mcp.example.test/mcp"
        assert server.description == CARD["description"] and server.version == "2.1.0"
        assert server.discovered == {
            "description": CARD_URL,
            "version": CARD_URL,
            "website_url": CARD_URL,
            "repository_url": CARD_URL,
        }
    finally:
        await service.repo.close()


async def test_an_agent_may_leave_the_endpoint_to_the_domain(
    make_live: Callable[..., LiveServer],
    settings: Settings,
    dns: ThreadedDnsServer,
    published: CardServer,
    ca_bundle: str,
) -> None:
    """Through the real MCP client: register_server without an endpoint takes the one the domain publishes;
    without auto discovery the same call says the endpoint is missing, in the one form of a refusal."""
    live = make_live(discovering(settings, ca_bundle))
    async with mcp_client(live.base_url) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert "endpoint" not in tools["register_server"].input_schema.get("required", [])
        claim = structured(await client.call_tool("register_server", {"domain": DOMAIN, "slug": "mail"}))
    assert claim["discovered"]["endpoint"] == TXT_SOURCE and claim["status"] == "pending_verification"
    plain = make_live(replace(settings, auto_discovery=False))
    async with mcp_client(plain.base_url) as client:
        text = error_text(await client.call_tool("register_server", {"domain": DOMAIN, "slug": "other"}))
    assert text.removeprefix("Error executing tool register_server: ").startswith(
        "endpoint: missing; allowed: "
    )
