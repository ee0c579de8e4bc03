"""SSRF guard for outbound probes: which URLs the registry may connect to, and at which address.

A probe target is a URL chosen by a third party, so before any connection the host is resolved through
the project's resolver and every address it resolves to is checked. If any address is forbidden the
whole name is refused (a name that mixes public and internal addresses is hostile or broken either way).
The caller then connects to `CheckedTarget.ip`, never to the name again, so a second, different DNS
answer (rebinding) cannot redirect the connection.

Forbidden: loopback, unspecified, "this network" 0.0.0.0/8, private (RFC 1918, fc00::/7), link-local
(169.254.0.0/16, fe80::/10), CGNAT 100.64.0.0/10, multicast, broadcast, reserved and other
special-purpose ranges (documentation, benchmarking, IETF assignments, site-local, discard), and
cloud metadata endpoints. IPv6 addresses that embed an IPv4 address (IPv4-mapped ::ffff:0:0/96,
NAT64 64:ff9b::/96, 6to4 2002::/16) are judged by the IPv4 address they carry.

`ProbePolicy.allow_cidrs` re-opens chosen ranges; the application sets it only outside production.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field

import dns.asyncresolver
import httpx

from mcplookup_mcp.probe.dns_resolver import lookup_addresses

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_PORTS = {"https": 443, "http": 80}


class BlockedTarget(Exception):
    """The SSRF guard refused a probe target; `reason` says why, in words fit for an operator."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class ProbePolicy:
    """Where the prober may connect.

    `allow_cidrs` overrides the forbidden ranges (tests and development only); `allowed_ports` applies
    to the effective port (the scheme's default when the URL names none).
    """

    allow_cidrs: tuple[IPNetwork, ...] = ()
    allowed_ports: frozenset[int] = field(default_factory=lambda: frozenset({443}))
    allow_plain_http: bool = False
    max_redirects: int = 3

    def allows(self, ip: IPAddress) -> bool:
        return any(ip.version == net.version and ip in net for net in self.allow_cidrs)


@dataclass(frozen=True)
class CheckedTarget:
    """A URL that passed the guard, with the address the caller must connect to."""

    url: str
    scheme: str
    host: str
    port: int
    ip: IPAddress
    addresses: tuple[IPAddress, ...]

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if DEFAULT_PORTS.get(self.scheme) == self.port else f"{host}:{self.port}"

    @property
    def connect_url(self) -> str:
        """The URL with its host replaced by the checked address."""
        return str(httpx.URL(self.url).copy_with(host=str(self.ip), port=self.port))


def _nets(*cidrs: str) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(c) for c in cidrs)


# Ordered: the first match gives the reason, so the specific ranges come before the ranges containing them.
_V4_RULES: tuple[tuple[tuple[IPNetwork, ...], str], ...] = (
    (_nets("169.254.169.254/32", "168.63.129.16/32", "100.100.100.200/32"), "cloud metadata endpoint"),
    (_nets("0.0.0.0/8"), "unspecified or 'this network' address (0.0.0.0/8)"),
    (_nets("127.0.0.0/8"), "loopback address"),
    (_nets("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"), "private address (RFC 1918)"),
    (_nets("169.254.0.0/16"), "link-local address"),
    (_nets("100.64.0.0/10"), "carrier-grade NAT address (100.64.0.0/10)"),
    (_nets("224.0.0.0/4"), "multicast address"),
    (_nets("255.255.255.255/32"), "broadcast address"),
    (_nets("240.0.0.0/4"), "reserved address (240.0.0.0/4)"),
    (
        _nets("192.0.0.0/24", "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "198.18.0.0/15"),
        "special-purpose address (IETF, documentation or benchmarking range)",
    ),
)

_V6_RULES: tuple[tuple[tuple[IPNetwork, ...], str], ...] = (
    (_nets("fd00:ec2::254/128"), "cloud metadata endpoint"),
    (_nets("::/128"), "unspecified address"),
    (_nets("::1/128"), "loopback address"),
    (_nets("fc00::/7"), "private address (unique local fc00::/7)"),
    (_nets("fe80::/10"), "link-local address"),
    (_nets("fec0::/10"), "site-local address (deprecated)"),
    (_nets("ff00::/8"), "multicast address"),
    (_nets("64:ff9b:1::/48"), "local-use NAT64 address"),
    (
        _nets("2001:db8::/32", "100::/64", "2001::/23"),
        "special-purpose address (IETF or documentation range)",
    ),
    (_nets("::/8"), "reserved address (::/8, including IPv4-compatible)"),
)

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, str] | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped, "IPv4-mapped"
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), "NAT64"
    if ip.sixtofour is not None:
        return ip.sixtofour, "6to4"
    return None


def is_forbidden_address(ip: IPAddress) -> str | None:
    """Why a probe must not connect to `ip`, or None when it may. Ignores any allowlist."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return "scoped IPv6 address"
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            inner, kind = embedded
            reason = is_forbidden_address(inner)
            return None if reason is None else f"{kind} IPv6 address of {inner}: {reason}"
        rules = _V6_RULES
    else:
        rules = _V4_RULES
    for networks, reason in rules:
        if any(ip in net for net in networks):
            return reason
    if ip.is_multicast:
        return "multicast address"
    if ip.is_reserved:
        return "reserved address"
    # Catch-all for IANA special-purpose ranges the table above does not name.
    if not ip.is_global:
        return "non-global special-purpose address"
    return None


def _address_reason(ip: IPAddress, policy: ProbePolicy) -> str | None:
    if policy.allows(ip):
        return None
    return is_forbidden_address(ip)


def _parse(url: str, policy: ProbePolicy) -> tuple[httpx.URL, str, str, int]:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise BlockedTarget(f"invalid URL: {exc}") from None
    scheme = parsed.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise BlockedTarget(f"scheme {scheme or '(none)'!r} is not allowed; only https")
    if scheme == "http" and not policy.allow_plain_http:
        raise BlockedTarget("plain http is not allowed; only https")
    if parsed.userinfo:
        raise BlockedTarget("credentials in the URL are not allowed")
    host = parsed.raw_host.decode("ascii").lower().rstrip(".")
    if not host:
        raise BlockedTarget("URL has no host")
    port = parsed.port if parsed.port is not None else DEFAULT_PORTS[scheme]
    if port not in policy.allowed_ports:
        allowed = ", ".join(str(p) for p in sorted(policy.allowed_ports)) or "none"
        raise BlockedTarget(f"port {port} is not allowed (allowed: {allowed})")
    return parsed, scheme, host, port


def _choose(addresses: Sequence[IPAddress]) -> IPAddress:
    # IPv4 first: probe hosts without IPv6 routes are common, hosts without IPv4 are rare.
    for ip in addresses:
        if ip.version == 4:
            return ip
    return addresses[0]


async def check_target(url: str, resolver: dns.asyncresolver.Resolver, policy: ProbePolicy) -> CheckedTarget:
    """Check `url` and resolve its host; raise `BlockedTarget` if the prober must not connect.

    DNS failures propagate as `mcplookup_mcp.probe.dns_resolver.DnsLookupError` subclasses: an unresolvable
    name is unreachable, not blocked.
    """
    parsed, scheme, host, port = _parse(url, policy)
    addresses = await lookup_addresses(resolver, host)
    if not addresses:
        raise BlockedTarget(f"{host} resolved to no address")
    for ip in addresses:
        reason = _address_reason(ip, policy)
        if reason is not None:
            shown = host if host == str(ip) else f"{host} resolves to {ip}"
            raise BlockedTarget(f"{shown}: {reason}")
    unique = tuple(dict.fromkeys(addresses))
    return CheckedTarget(
        url=str(parsed), scheme=scheme, host=host, port=port, ip=_choose(unique), addresses=unique
    )
