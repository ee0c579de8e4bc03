"""The prober's SSRF guard: address rules, URL checks, and real probes that must never connect."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator, Iterator

import dns.asyncresolver
import pytest
from dnsserver import LoopbackDnsServer
from mcp_targets import TARGET_IP, ClosingListener, UvicornThread, legacy_endpoint_app, redirect_app

from mcplookup_mcp.probe.dns_resolver import NoSuchDomain, make_resolver
from mcplookup_mcp.probe.health import Transport, probe
from mcplookup_mcp.probe.ssrf import BlockedTarget, ProbePolicy, check_target, is_forbidden_address

# --- address rules -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.0.9", "loopback"),
        ("::1", "loopback"),
        ("0.0.0.0", "unspecified"),
        ("0.1.2.3", "this network"),
        ("::", "unspecified"),
        ("10.0.0.1", "RFC 1918"),
        ("172.16.5.5", "RFC 1918"),
        ("192.168.1.1", "RFC 1918"),
        ("fd12:3456::1", "unique local"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("100.127.255.254", "carrier-grade NAT"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("ff02::1", "multicast"),
        ("ff0e::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "broadcast"),
        ("192.0.2.10", "special-purpose"),
        ("198.18.0.1", "special-purpose"),
        ("2001:db8::1", "special-purpose"),
        ("169.254.169.254", "metadata"),
        ("168.63.129.16", "metadata"),
        ("100.100.100.200", "metadata"),
        ("fd00:ec2::254", "metadata"),
        ("::ffff:127.0.0.1", "IPv4-mapped"),
        ("::ffff:169.254.169.254", "metadata"),
        ("::ffff:10.0.0.1", "RFC 1918"),
        ("64:ff9b::7f00:1", "NAT64"),
        ("64:ff9b::a9fe:a9fe", "metadata"),
        ("64:ff9b:1::1", "local-use NAT64"),
        ("2002:7f00:1::1", "6to4"),
        ("2002:a00:1::1", "RFC 1918"),
        ("::127.0.0.1", "reserved"),
        ("fec0::1", "site-local"),
    ],
)
def test_forbidden_addresses(address: str, reason: str) -> None:
    found = is_forbidden_address(ipaddress.ip_address(address))
    assert found is not None, address
    assert reason in found


@pytest.mark.parametrize(
    "address",
    ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"],
)
def test_public_addresses_are_allowed(address: str) -> None:
    assert is_forbidden_address(ipaddress.ip_address(address)) is None


# --- URL checks ----------------------------------------------------------------------------------


@pytest.fixture
async def dns_server() -> AsyncIterator[LoopbackDnsServer]:
    async with LoopbackDnsServer() as server:
        yield server


@pytest.fixture
def resolver(dns_server: LoopbackDnsServer) -> dns.asyncresolver.Resolver:
    return make_resolver([(dns_server.host, dns_server.port)], timeout=2.0)


async def test_public_name_passes_and_gives_the_checked_address(
    dns_server: LoopbackDnsServer, resolver: dns.asyncresolver.Resolver
) -> None:
    dns_server.set_a("mcp.example.test", "93.184.215.14")
    dns_server.set_aaaa("mcp.example.test", "2606:2800:21f:cb07:6820:80da:af6b:8b2c")
    target = await check_target("https://MCP.example.test./mcp?x=1", resolver, ProbePolicy())
    assert (target.scheme, target.host, target.port) == ("https", "mcp.example.test", 443)
    assert target.ip == ipaddress.ip_address("93.184.215.14")
    assert len(target.addresses) == 2
    assert target.host_header == "mcp.example.test"
    assert target.connect_url == "https://93.184.215.14/mcp?x=1"


async def test_ipv6_only_name_connects_to_bracketed_address(
    dns_server: LoopbackDnsServer, resolver: dns.asyncresolver.Resolver
) -> None:
    dns_server.set_aaaa("v6.example.test", "2606:4700:4700::1111")
    policy = ProbePolicy(allowed_ports=frozenset({8443}))
    target = await check_target("https://v6.example.test:8443/mcp", resolver, policy)
    assert target.connect_url == "https://[2606:4700:4700::1111]:8443/mcp"
    assert target.host_header == "v6.example.test:8443"


@pytest.mark.parametrize(
    ("url", "policy", "reason"),
    [
        ("ftp://mcp.example.test/", ProbePolicy(), "scheme"),
        ("file:///etc/passwd", ProbePolicy(), "scheme"),
        ("http://mcp.example.test/mcp", ProbePolicy(), "plain http"),
        ("https://mcp.example.test:8443/mcp", ProbePolicy(), "port 8443"),
        ("http://mcp.example.test/mcp", ProbePolicy(allow_plain_http=True), "port 80"),
        ("https://user:pw@mcp.example.test/mcp", ProbePolicy(), "credentials"),
        ("https://127.0.0.1/mcp", ProbePolicy(), "loopback"),
        ("https://[::1]/mcp", ProbePolicy(), "loopback"),
        ("https://[::ffff:7f00:1]/mcp", ProbePolicy(), "IPv4-mapped"),
    ],
)
async def test_refused_urls(
    resolver: dns.asyncresolver.Resolver, url: str, policy: ProbePolicy, reason: str
) -> None:
    with pytest.raises(BlockedTarget) as info:
        await check_target(url, resolver, policy)
    assert reason in info.value.reason


async def test_one_forbidden_address_refuses_the_whole_name(
    dns_server: LoopbackDnsServer, resolver: dns.asyncresolver.Resolver
) -> None:
    dns_server.set_a("mixed.example.test", "93.184.215.14", "10.0.0.1")
    with pytest.raises(BlockedTarget) as info:
        await check_target("https://mixed.example.test/", resolver, ProbePolicy())
    assert "10.0.0.1" in info.value.reason
    assert "RFC 1918" in info.value.reason


async def test_allowlist_opens_only_its_range(
    dns_server: LoopbackDnsServer, resolver: dns.asyncresolver.Resolver
) -> None:
    dns_server.set_a("mcp.example.test", "127.0.0.2")
    dns_server.set_a("lo.example.test", "127.0.0.1")
    policy = ProbePolicy(
        allow_cidrs=(ipaddress.ip_network("127.0.0.2/32"),),
        allow_plain_http=True,
        allowed_ports=frozenset({8080}),
    )
    target = await check_target("http://mcp.example.test:8080/mcp", resolver, policy)
    assert target.ip == ipaddress.ip_address("127.0.0.2")
    with pytest.raises(BlockedTarget, match="loopback"):
        await check_target("http://lo.example.test:8080/mcp", resolver, policy)


async def test_unknown_name_is_a_dns_error_not_a_block(resolver: dns.asyncresolver.Resolver) -> None:
    with pytest.raises(NoSuchDomain):
        await check_target("https://nowhere.example.test/mcp", resolver, ProbePolicy())


# --- real probes that must be blocked ------------------------------------------------------------


@pytest.fixture
def sentinel() -> Iterator[ClosingListener]:
    """Listens on 127.0.0.1 and ::1; a blocked probe must never be accepted here."""
    with ClosingListener(("127.0.0.1", "::1")) as listener:
        yield listener


def _policy(*ports: int, allow: str | None = None) -> ProbePolicy:
    return ProbePolicy(
        allow_cidrs=(ipaddress.ip_network(allow),) if allow else (),
        allowed_ports=frozenset(ports),
        allow_plain_http=True,
    )


@pytest.mark.parametrize(
    ("name", "setter", "address", "reason"),
    [
        ("lo.example.test", "set_a", "127.0.0.1", "loopback"),
        ("lo6.example.test", "set_aaaa", "::1", "loopback"),
        ("metadata.example.test", "set_a", "169.254.169.254", "metadata"),
        ("internal.example.test", "set_a", "10.0.0.1", "RFC 1918"),
    ],
)
async def test_probe_to_forbidden_name_is_blocked_without_connecting(
    dns_server: LoopbackDnsServer,
    resolver: dns.asyncresolver.Resolver,
    sentinel: ClosingListener,
    name: str,
    setter: str,
    address: str,
    reason: str,
) -> None:
    getattr(dns_server, setter)(name, address)
    transports: tuple[Transport, ...] = ("streamable-http", "sse")
    for transport in transports:
        result = await probe(
            f"http://{name}:{sentinel.port}/mcp",
            transport=transport,
            resolver=resolver,
            policy=_policy(sentinel.port),
            timeout=3.0,
        )
        assert result.status == "blocked"
        assert result.error_class == "ssrf_blocked"
        assert result.error is not None and reason in result.error and address in result.error
        assert not result.is_up
    assert sentinel.accepts == []


async def test_sentinel_counts_a_probe_that_is_allowed(
    dns_server: LoopbackDnsServer, resolver: dns.asyncresolver.Resolver, sentinel: ClosingListener
) -> None:
    # The control for the zero counts above: the same probe with 127.0.0.1 allowlisted does connect.
    dns_server.set_a("lo.example.test", "127.0.0.1")
    result = await probe(
        f"http://lo.example.test:{sentinel.port}/mcp",
        transport="streamable-http",
        resolver=resolver,
        policy=_policy(sentinel.port, allow="127.0.0.1/32"),
        timeout=3.0,
    )
    assert result.status == "unreachable"
    assert result.error_class == "connection_closed"
    assert sentinel.accepts == ["127.0.0.1"]


@pytest.mark.parametrize("via_name", [False, True], ids=["ip-literal", "name"])
async def test_redirect_from_allowlisted_server_to_loopback_is_blocked(
    dns_server: LoopbackDnsServer,
    resolver: dns.asyncresolver.Resolver,
    sentinel: ClosingListener,
    via_name: bool,
) -> None:
    dns_server.set_a("mcp.example.test", TARGET_IP)
    dns_server.set_a("lo.example.test", "127.0.0.1")
    host = "lo.example.test" if via_name else "127.0.0.1"
    with UvicornThread(redirect_app(f"http://{host}:{sentinel.port}/mcp")) as redirector:
        result = await probe(
            redirector.url(),
            transport="streamable-http",
            resolver=resolver,
            policy=_policy(redirector.port, sentinel.port, allow=f"{TARGET_IP}/32"),
            timeout=3.0,
        )
    assert result.status == "blocked"
    assert result.error is not None and "loopback" in result.error
    assert sentinel.accepts == []


async def test_legacy_endpoint_event_pointing_at_loopback_is_blocked(
    dns_server: LoopbackDnsServer, resolver: dns.asyncresolver.Resolver, sentinel: ClosingListener
) -> None:
    dns_server.set_a("mcp.example.test", TARGET_IP)
    endpoint = f"http://127.0.0.1:{sentinel.port}/messages?session_id=1"
    with UvicornThread(legacy_endpoint_app(endpoint)) as server:
        result = await probe(
            server.url("/sse"),
            transport="sse",
            resolver=resolver,
            policy=_policy(server.port, sentinel.port, allow=f"{TARGET_IP}/32"),
            timeout=3.0,
        )
    assert result.status == "blocked"
    assert result.error is not None and "loopback" in result.error
    assert sentinel.accepts == []
