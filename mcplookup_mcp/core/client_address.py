"""Who is asking: the client address behind trusted proxies, and the API key sent.

Each transport reads the address from the request (the middleware puts it in the scope) and passes it to
the service's rate limits. ORIGIN carries it, with the key, to read-your-writes (read_your_writes.py),
whose marks every read path of every service consults; a write's caller is its next read's caller.

`X-Forwarded-For` is a list each proxy appends its peer to, so only its right end is written by proxies
we run; everything left of the first address we do not trust was written by the client and may be
anything. The client is therefore the rightmost hop that is not a configured proxy
(`MCPLOOKUP_TRUSTED_PROXIES`, addresses or CIDRs). `*` trusts whatever peer connects, for one hop only:
the client is the rightmost entry, the one that peer wrote, never the leftmost one the client wrote.
"""

from __future__ import annotations

import contextvars
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from mcplookup_mcp.core import keys

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Origin:
    address: str
    api_key: str | None = None


# Set for each HTTP request by ClientAddressMiddleware; None outside a request (the CLI). Only
# read_your_writes.py reads it: rate limits are given the client by the transport.
ORIGIN: contextvars.ContextVar[Origin | None] = contextvars.ContextVar("mcplookup_origin", default=None)


def parse_proxies(entries: Iterable[str]) -> tuple[bool, tuple[Network, ...]]:
    """`*` or addresses and CIDRs; ValueError names the first entry that is neither."""
    any_peer = False
    networks: list[Network] = []
    for entry in entries:
        if entry == "*":
            any_peer = True
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"{entry!r} is not an IP address, a CIDR or *") from None
    return any_peer, tuple(networks)


def _address(raw: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    raw = raw.strip()
    if raw.startswith("[") and "]" in raw:  # [v6]:port
        raw = raw[1 : raw.index("]")]
    elif raw.count(":") == 1:  # v4:port
        raw = raw.split(":")[0]
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped or address


TRUSTED_MEMO = 4096


class TrustedProxies:
    def __init__(self, entries: Sequence[str]) -> None:
        self.any_peer, self.networks = parse_proxies(entries)
        # Asked for the connecting peer of every request, which is mostly the same few proxies (or,
        # with none in front, clients that come back): parsing the address was a tenth of the middleware.
        self._trusted: dict[str, bool] = {}

    def trusts(self, address: str) -> bool:
        if not self.networks:
            return False
        known = self._trusted.get(address)
        if known is None:
            parsed = _address(address)
            known = parsed is not None and any(parsed in network for network in self.networks)
            if len(self._trusted) >= TRUSTED_MEMO:
                self._trusted.clear()
            self._trusted[address] = known
        return known

    def client(self, peer: str, forwarded_for: str | None) -> str:
        """The client's address, given the connecting peer and the X-Forwarded-For it sent."""
        if not forwarded_for or not (self.any_peer or self.trusts(peer)):
            return peer
        hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
        nearest = peer
        for hop in reversed(hops):
            parsed = _address(hop)
            if parsed is None:
                # A trusted proxy passed on something that is no address: the client is unknown past it.
                return nearest
            if self.any_peer or not any(parsed in network for network in self.networks):
                return str(parsed)
            nearest = str(parsed)
        return nearest


class ClientAddressMiddleware:
    """Puts the client's address in the scope (what `request.client` reads) and the request's origin in
    ORIGIN. The scheme comes from X-Forwarded-Proto only when the peer is a trusted proxy."""

    def __init__(self, app: ASGIApp, proxies: TrustedProxies) -> None:
        self.app = app
        self.proxies = proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        peer = scope.get("client")
        peer_host = str(peer[0]) if peer else "unknown"
        forwarded: list[str] = []
        proto = authorization = None
        for key, value in scope.get("headers") or ():
            if key == b"x-forwarded-for":
                forwarded.append(value.decode("latin-1"))
            elif key == b"x-forwarded-proto":
                proto = value.decode("latin-1").strip().lower()
            elif key == b"authorization":
                authorization = value.decode("latin-1")
        address = self.proxies.client(peer_host, ",".join(forwarded) or None)
        if address != peer_host:
            scope = dict(scope, client=(address, 0))
        if proto in ("http", "https") and (self.proxies.any_peer or self.proxies.trusts(peer_host)):
            scope = dict(scope, scheme=proto)
        token = ORIGIN.set(Origin(address, keys.bearer_token(authorization)))
        try:
            await self.app(scope, receive, send)
        finally:
            ORIGIN.reset(token)
