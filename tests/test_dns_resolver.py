"""mcplookup_mcp.probe.dns_resolver against a real DNS server on loopback."""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import AsyncIterator, Iterator

import dns.asyncresolver
import dns.message
import dns.nameserver
import dns.resolver
import pytest
from dnsserver import LoopbackDnsServer, ThreadedDnsServer

from mcplookup_mcp.core.nameservers import parse_nameservers
from mcplookup_mcp.probe.dns_resolver import (
    DnsFailure,
    DnsTimeout,
    NoRecord,
    NoSuchDomain,
    lookup_addresses,
    lookup_txt,
    make_resolver,
)


@pytest.fixture
async def server() -> AsyncIterator[LoopbackDnsServer]:
    async with LoopbackDnsServer() as srv:
        yield srv


@pytest.fixture
def resolver(server: LoopbackDnsServer) -> dns.asyncresolver.Resolver:
    return make_resolver([(server.host, server.port)], timeout=2.0)


# --- TXT ---------------------------------------------------------------------------------------------


async def test_txt_single_value(server: LoopbackDnsServer, resolver: dns.asyncresolver.Resolver) -> None:
    server.set_txt("_mcp-verify.example.test", "mcp-verify=" + "ab" * 16)
    assert await lookup_txt(resolver, "_mcp-verify.example.test") == ["mcp-verify=" + "ab" * 16]
    assert server.queries == [("_mcp-verify.example.test", "TXT")]


async def test_txt_multi_string_record_is_joined_without_separator(
    server: LoopbackDnsServer, resolver: dns.asyncresolver.Resolver
) -> None:
    server.set_txt("_mcp.example.test", ("v=mcp1; ", "endpoint=https://", "mcp.example.test/mcp"))
    assert await lookup_txt(resolver, "_mcp.example.test") == [
        "v=mcp1; endpoint=https://mcp.example.test/mcp"
    ]


async def test_txt_several_records(server: LoopbackDnsServer, resolver: dns.asyncresolver.Resolver) -> None:
    server.set_txt("multi.example.test", "one", ("tw", "o"), "three")
    assert sorted(await lookup_txt(resolver, "multi.example.test")) == ["one", "three", "two"]


async def test_txt_name_is_case_insensitive_and_trailing_dot_optional(
    server: LoopbackDnsServer, resolver: dns.asyncresolver.Resolver
) -> None:
    server.set_txt("Mixed.Example.TEST.", "value")
    assert await lookup_txt(resolver, "mixed.example.test") == ["value"]
    assert await lookup_txt(resolver, "MIXED.example.test.") == ["value"]


async def test_txt_is_decoded_as_utf8_with_replacement(
    server: LoopbackDnsServer, resolver: dns.asyncresolver.Resolver
) -> None:
    server.set_txt("utf8.example.test", "caf\u00e9", (b"bad\xff", b"!"))
    values = await lookup_txt(resolver, "utf8.example.test")
    assert sorted(values) == ["bad\ufffd!", "caf\u00e9"]


async def test_txt_large_answer_falls_back_to_tcp(
    server: LoopbackDnsServer, resolver: dns.asyncresolver.Resolver
) -> None:
    values = [f"{i:02d}-" + "x" * 200 for i in range(10)]
    server.set_txt("big.example.test", *values)
    assert sorted(await lookup_txt(resolver, "big.example.test")) == values
    # The UDP reply was truncated, so dnspython had to ask again over TCP.
    assert server.tcp_queries == [("big.example.test", "TXT")]
    assert server.queries.count(("big.example.test", "TXT")) == 2


async def test_txt_reflects_runtime_changes(
    server: LoopbackDnsServer, resolver: dns.asyncresolver.Resolver
) -> None:
    server.set_txt("change.example.test", "first")
    assert await lookup_txt(resolver, "change.example.test") == ["first"]
    server.set_txt("change.example.test", "second")
    assert await lookup_txt(resolver, "change.example.test") == ["second"]
    server.remove("change.example.test")
    with pytest.raises(NoSuchDomain):
        await lookup_txt(resolver, "change.example.test")


# --- errors --------------------------------------------------------------------------------------------


async def test_nxdomain_raises_no_such_domain(resolver: dns.asyncresolver.Resolver) -> None:
    with pytest.raises(NoSuchDomain) as info:
        await lookup_txt(resolver, "_mcp-verify.nowhere.test")
    assert info.value.name == "_mcp-verify.nowhere.test"
    assert "does not exist" in str(info.value)
    assert "_mcp-verify.nowhere.test" in str(info.value)


async def test_no_answer_raises_no_record(
    server: LoopbackDnsServer, resolver: dns.asyncresolver.Resolver
) -> None:
    server.set_a("only-a.example.test", "192.0.2.1")
    with pytest.raises(NoRecord) as info:
        await lookup_txt(resolver, "only-a.example.test")
    assert info.value.name == "only-a.example.test"


async def test_empty_non_terminal_is_no_record_not_nxdomain(
    server: LoopbackDnsServer, resolver: dns.asyncresolver.Resolver
) -> None:
    server.set_txt("_mcp-verify.parent.test", "token")
    with pytest.raises(NoRecord):
        await lookup_txt(resolver, "parent.test")


async def test_timeout_raises_dns_timeout(server: LoopbackDnsServer) -> None:
    server.set_timeout("slow.example.test")
    fast = make_resolver([(server.host, server.port)], timeout=0.5)
    with pytest.raises(DnsTimeout) as info:
        await lookup_txt(fast, "slow.example.test")
    assert info.value.name == "slow.example.test"
    assert ("slow.example.test", "TXT") in server.queries


async def test_servfail_raises_dns_failure(
    server: LoopbackDnsServer, resolver: dns.asyncresolver.Resolver
) -> None:
    server.set_servfail("broken.example.test")
    with pytest.raises(DnsFailure) as info:
        await lookup_txt(resolver, "broken.example.test")
    assert info.value.name == "broken.example.test"


async def test_invalid_name_raises_dns_failure(resolver: dns.asyncresolver.Resolver) -> None:
    with pytest.raises(DnsFailure):
        await lookup_txt(resolver, "x" * 64 + ".example.test")


async def test_closed_port_times_out() -> None:
    # dnspython's async UDP socket is unconnected, so ICMP "port unreachable" never surfaces: a timeout.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    dead = make_resolver([("127.0.0.1", closed_port)], timeout=0.5)
    with pytest.raises(DnsTimeout) as info:
        await lookup_txt(dead, "example.test")
    assert info.value.name == "example.test"


# --- addresses ---------------------------------------------------------------------------------------


async def test_lookup_addresses_a_and_aaaa(
    server: LoopbackDnsServer, resolver: dns.asyncresolver.Resolver
) -> None:
    server.set_a("mcp.example.test", "127.0.0.2", "192.0.2.7")
    server.set_aaaa("mcp.example.test", "2001:db8::1")
    addresses = await lookup_addresses(resolver, "mcp.example.test")
    assert sorted(addresses, key=str) == sorted(
        [
            ipaddress.IPv4Address("127.0.0.2"),
            ipaddress.IPv4Address("192.0.2.7"),
            ipaddress.IPv6Address("2001:db8::1"),
        ],
        key=str,
    )
    assert sorted(server.queries) == [("mcp.example.test", "A"), ("mcp.example.test", "AAAA")]


async def test_lookup_addresses_one_type_missing_is_fine(
    server: LoopbackDnsServer, resolver: dns.asyncresolver.Resolver
) -> None:
    server.set_a("v4.example.test", "127.0.0.2")
    server.set_aaaa("v6.example.test", "::1")
    assert await lookup_addresses(resolver, "v4.example.test") == [ipaddress.IPv4Address("127.0.0.2")]
    assert await lookup_addresses(resolver, "v6.example.test") == [ipaddress.IPv6Address("::1")]


async def test_lookup_addresses_nxdomain(resolver: dns.asyncresolver.Resolver) -> None:
    with pytest.raises(NoSuchDomain) as info:
        await lookup_addresses(resolver, "missing.example.test")
    assert info.value.name == "missing.example.test"


async def test_lookup_addresses_no_address_records(
    server: LoopbackDnsServer, resolver: dns.asyncresolver.Resolver
) -> None:
    server.set_txt("txt-only.example.test", "hello")
    with pytest.raises(NoRecord) as info:
        await lookup_addresses(resolver, "txt-only.example.test")
    assert "A or AAAA" in str(info.value)


async def test_lookup_addresses_timeout(server: LoopbackDnsServer) -> None:
    server.set_timeout("slow.example.test")
    fast = make_resolver([(server.host, server.port)], timeout=0.5)
    with pytest.raises(DnsTimeout):
        await lookup_addresses(fast, "slow.example.test")


async def test_lookup_addresses_servfail(
    server: LoopbackDnsServer, resolver: dns.asyncresolver.Resolver
) -> None:
    server.set_servfail("broken.example.test")
    with pytest.raises(DnsFailure):
        await lookup_addresses(resolver, "broken.example.test")


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", ipaddress.IPv4Address("127.0.0.1")),
        ("169.254.169.254", ipaddress.IPv4Address("169.254.169.254")),
        ("::1", ipaddress.IPv6Address("::1")),
        ("[2001:db8::5]", ipaddress.IPv6Address("2001:db8::5")),
    ],
)
async def test_lookup_addresses_ip_literal_passthrough(
    server: LoopbackDnsServer,
    resolver: dns.asyncresolver.Resolver,
    host: str,
    expected: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> None:
    assert await lookup_addresses(resolver, host) == [expected]
    assert server.queries == []


# --- parse_nameservers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", []),
        ("   ", []),
        ("127.0.0.1", [("127.0.0.1", 53)]),
        ("127.0.0.1:5353", [("127.0.0.1", 5353)]),
        ("::1", [("::1", 53)]),
        ("[::1]:5353", [("::1", 5353)]),
        ("[::1]", [("::1", 53)]),
        ("2001:DB8:0:0::1", [("2001:db8::1", 53)]),
        (
            "10.0.0.1, 10.0.0.2:1053 ,[2001:db8::1]:65535",
            [("10.0.0.1", 53), ("10.0.0.2", 1053), ("2001:db8::1", 65535)],
        ),
    ],
)
def test_parse_nameservers_good(value: str, expected: list[tuple[str, int]]) -> None:
    assert parse_nameservers(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("dns.google", "not an IP address"),
        ("1.2.3.4.5", "not an IP address"),
        ("127.0.0.1:", "not a number"),
        ("127.0.0.1:abc", "not a number"),
        ("127.0.0.1:-1", "not a number"),
        ("127.0.0.1:0", "not in 1-65535"),
        ("127.0.0.1:65536", "not in 1-65535"),
        ("[::1]:99999", "not in 1-65535"),
        ("[::1", "missing ']'"),
        ("[::1]5353", "expected ':port'"),
        ("[127.0.0.1]:53", "only for IPv6"),
        ("127.0.0.1,,127.0.0.2", "empty entry"),
        ("127.0.0.1,", "empty entry"),
    ],
)
def test_parse_nameservers_bad(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_nameservers(value)


# --- make_resolver ---------------------------------------------------------------------------------------


def _default_nameservers() -> list[str]:
    return [str(ns) for ns in dns.resolver.get_default_resolver().nameservers]


async def test_make_resolver_leaves_default_resolver_alone(server: LoopbackDnsServer) -> None:
    before = _default_nameservers()
    async_before = [str(ns) for ns in dns.asyncresolver.get_default_resolver().nameservers]
    private = make_resolver([(server.host, server.port), ("::1", 5353)], timeout=1.5)
    server.set_txt("private.example.test", "yes")
    assert await lookup_txt(private, "private.example.test") == ["yes"]
    assert _default_nameservers() == before
    assert [str(ns) for ns in dns.asyncresolver.get_default_resolver().nameservers] == async_before
    servers = private.nameservers
    assert all(isinstance(ns, dns.nameserver.Do53Nameserver) for ns in servers)
    assert [(ns.address, ns.port) for ns in servers if isinstance(ns, dns.nameserver.Do53Nameserver)] == [
        (server.host, server.port),
        ("::1", 5353),
    ]
    assert private.lifetime == 1.5
    assert private.timeout == 1.5
    assert private.cache is None


def test_make_resolver_empty_list_uses_system_configuration() -> None:
    system = dns.resolver.Resolver(configure=True)
    resolver = make_resolver([], timeout=3.0)
    assert [str(ns) for ns in resolver.nameservers] == [str(ns) for ns in system.nameservers]
    assert resolver.lifetime == 3.0
    assert resolver.cache is None


@pytest.mark.parametrize(
    ("nameservers", "timeout"),
    [([("not-an-ip", 53)], 1.0), ([("127.0.0.1", 0)], 1.0), ([("127.0.0.1", 53)], 0.0)],
)
def test_make_resolver_rejects_bad_arguments(nameservers: list[tuple[str, int]], timeout: float) -> None:
    with pytest.raises(ValueError):
        make_resolver(nameservers, timeout)


# --- threaded server -------------------------------------------------------------------------------------


@pytest.fixture
def threaded() -> Iterator[ThreadedDnsServer]:
    with ThreadedDnsServer() as srv:
        yield srv


async def test_threaded_server_serves_and_mutates(threaded: ThreadedDnsServer) -> None:
    resolver = make_resolver(threaded.nameservers, timeout=2.0)
    threaded.set_txt("_mcp-verify.threaded.test", "mcp-verify=" + "cd" * 16)
    threaded.set_a("mcp.threaded.test", "127.0.0.2")
    assert await lookup_txt(resolver, "_mcp-verify.threaded.test") == ["mcp-verify=" + "cd" * 16]
    assert await lookup_addresses(resolver, "mcp.threaded.test") == [ipaddress.IPv4Address("127.0.0.2")]
    threaded.remove("mcp.threaded.test", "A")
    with pytest.raises(NoSuchDomain):
        await lookup_addresses(resolver, "mcp.threaded.test")
    assert ("_mcp-verify.threaded.test", "TXT") in threaded.queries
    threaded.reset()
    assert threaded.queries == []
    with pytest.raises(NoSuchDomain):
        await lookup_txt(resolver, "_mcp-verify.threaded.test")


def test_threaded_server_stop_releases_both_sockets() -> None:
    srv = ThreadedDnsServer()
    srv.start()
    port = srv.port
    # While it runs the server holds its port, so the binds below prove that stop() let it go.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, pytest.raises(OSError):
        udp.bind((srv.host, port))
    srv.stop()
    srv.stop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind((srv.host, port))
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        tcp.bind((srv.host, port))


async def test_server_stop_closes_open_tcp_connections() -> None:
    srv = LoopbackDnsServer()
    await srv.start()
    reader, writer = await asyncio.open_connection(srv.host, srv.port)
    srv.set_a("tcp.example.test", "192.0.2.9")
    query = dns.message.make_query("tcp.example.test", "A")
    writer.write(query.to_wire(prepend_length=True))
    length = int.from_bytes(await reader.readexactly(2), "big")
    response = dns.message.from_wire(await reader.readexactly(length))
    assert [rr.to_text() for rr in response.answer[0]] == ["192.0.2.9"]
    await asyncio.wait_for(srv.stop(), timeout=5)
    assert await reader.read() == b""
    writer.close()
