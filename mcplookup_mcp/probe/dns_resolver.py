"""DNS resolution shared by domain verification and the health prober's SSRF guard."""

from __future__ import annotations

import asyncio
import ipaddress

import dns.asyncresolver
import dns.exception
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver

from mcplookup_mcp.core.nameservers import IPAddress, parse_ip


class DnsLookupError(Exception):
    """DNS lookup failed"""

    def __init__(self, name: str, message: str | None = None) -> None:
        self.name = name
        self.message = message or (type(self).__doc__ or "DNS lookup failed").strip()
        super().__init__(f"{self.message}: {name}")


class NoSuchDomain(DnsLookupError):
    """domain does not exist (NXDOMAIN)"""


class NoRecord(DnsLookupError):
    """domain exists but has no record of the requested type"""


class DnsTimeout(DnsLookupError):
    """DNS lookup timed out"""


class DnsFailure(DnsLookupError):
    """DNS server failure"""


def make_resolver(nameservers: list[tuple[str, int]], timeout: float) -> dns.asyncresolver.Resolver:
    """A private resolver: the given nameservers, or the system's when the list is empty."""
    if timeout <= 0:
        raise ValueError(f"DNS timeout must be positive, got {timeout!r}")
    if nameservers:
        resolver = dns.asyncresolver.Resolver(configure=False)
        servers: list[str | dns.nameserver.Nameserver] = []
        for address, port in nameservers:
            ip = parse_ip(address, f"{address}:{port}")
            if not 1 <= port <= 65535:
                raise ValueError(f"invalid nameserver port {port} for {address}")
            servers.append(dns.nameserver.Do53Nameserver(str(ip), port))
        resolver.nameservers = servers
    else:
        resolver = dns.asyncresolver.Resolver(configure=True)
    resolver.lifetime = timeout
    resolver.timeout = timeout
    # Verification must see record changes at once, and the SSRF guard must not trust stale answers.
    resolver.cache = None
    return resolver


async def _resolve(
    resolver: dns.asyncresolver.Resolver, name: str, rdtype: dns.rdatatype.RdataType
) -> dns.resolver.Answer:
    try:
        # Absolute name, so the system search list never turns one name into another.
        qname = dns.name.from_text(name)
    except dns.exception.DNSException as exc:
        raise DnsFailure(name, f"invalid domain name ({exc})") from exc
    try:
        return await resolver.resolve(qname, rdtype, search=False)
    except dns.resolver.NXDOMAIN as exc:
        raise NoSuchDomain(name) from exc
    except dns.resolver.NoAnswer as exc:
        raise NoRecord(name, f"no {rdtype.name} record") from exc
    except dns.exception.Timeout as exc:
        raise DnsTimeout(name) from exc
    except dns.exception.DNSException as exc:
        raise DnsFailure(name, f"DNS server failure ({exc})") from exc


async def lookup_txt(resolver: dns.asyncresolver.Resolver, name: str) -> list[str]:
    """TXT values at `name`; a record's character-strings are joined with no separator (RFC 7208)."""
    answer = await _resolve(resolver, name, dns.rdatatype.TXT)
    values: list[str] = []
    for rdata in answer:
        values.append(b"".join(rdata.strings).decode("utf-8", errors="replace"))
    return values


def _ip_literal(host: str) -> IPAddress | None:
    text = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


# When both queries fail, the more telling error wins: NXDOMAIN is authoritative for the whole name,
# while NoRecord for one type says nothing about the other type that timed out or failed.
_ERROR_RANK: dict[type[DnsLookupError], int] = {NoSuchDomain: 0, DnsTimeout: 1, DnsFailure: 2, NoRecord: 3}


async def lookup_addresses(resolver: dns.asyncresolver.Resolver, host: str) -> list[IPAddress]:
    """A and AAAA addresses of `host` (an IP literal is returned as is).

    Addresses of one type are returned even when the other type has none or failed; an error is raised
    only when neither type yields an address.
    """
    literal = _ip_literal(host)
    if literal is not None:
        return [literal]
    results = await asyncio.gather(
        _resolve(resolver, host, dns.rdatatype.A),
        _resolve(resolver, host, dns.rdatatype.AAAA),
        return_exceptions=True,
    )
    addresses: list[IPAddress] = []
    errors: list[DnsLookupError] = []
    for result in results:
        if isinstance(result, DnsLookupError):
            errors.append(result)
        elif isinstance(result, BaseException):
            raise result
        else:
            addresses.extend(ipaddress.ip_address(rdata.address) for rdata in result)
    if addresses:
        return addresses
    if all(isinstance(error, NoRecord) for error in errors):
        raise NoRecord(host, "no A or AAAA record")
    raise min(errors, key=lambda error: _ERROR_RANK.get(type(error), len(_ERROR_RANK)))
