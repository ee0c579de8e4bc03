"""Nameserver lists as configured (`ip[:port]`, comma-separated): parsed where settings are read, and
used by the resolver."""

from __future__ import annotations

import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

DEFAULT_DNS_PORT = 53


def _parse_port(text: str, entry: str) -> int:
    if not text.isascii() or not text.isdigit():
        raise ValueError(f"invalid nameserver {entry!r}: port {text!r} is not a number")
    port = int(text)
    if not 1 <= port <= 65535:
        raise ValueError(f"invalid nameserver {entry!r}: port {port} is not in 1-65535")
    return port


def parse_ip(text: str, entry: str) -> IPAddress:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise ValueError(f"invalid nameserver {entry!r}: {text!r} is not an IP address") from None


def parse_nameservers(value: str) -> list[tuple[str, int]]:
    """Parse a comma-separated `ip[:port]` list; IPv6 as `[::1]:5353` or bare `::1`."""
    if not value.strip():
        return []
    result: list[tuple[str, int]] = []
    for raw in value.split(","):
        entry = raw.strip()
        if not entry:
            raise ValueError(f"invalid nameserver list {value!r}: empty entry")
        port = DEFAULT_DNS_PORT
        if entry.startswith("["):
            host, sep, rest = entry[1:].partition("]")
            if not sep:
                raise ValueError(f"invalid nameserver {entry!r}: missing ']'")
            if rest:
                if not rest.startswith(":"):
                    raise ValueError(f"invalid nameserver {entry!r}: expected ':port' after ']'")
                port = _parse_port(rest[1:], entry)
            ip = parse_ip(host, entry)
            if ip.version != 6:
                raise ValueError(f"invalid nameserver {entry!r}: brackets are only for IPv6 addresses")
        elif entry.count(":") > 1:
            # Several colons can only be a bare IPv6 address; a port needs the bracket form.
            ip = parse_ip(entry, entry)
        else:
            host, sep, port_text = entry.partition(":")
            if sep:
                port = _parse_port(port_text, entry)
            ip = parse_ip(host, entry)
        result.append((str(ip), port))
    return result
