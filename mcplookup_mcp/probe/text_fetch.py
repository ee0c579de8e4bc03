"""One GET of a third party's document (a README, a package registry's entry) through the SSRF guard.

Like a probe: the host is resolved and checked, the request goes to the checked address with the name
as SNI and Host, redirects are followed by hand and each new target checked again, the body is capped
and the whole exchange (redirects included) has one deadline, so a server dripping bytes cannot hold
the fetcher past it. `If-None-Match` is sent when an ETag is known; 304 is an answer of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass

import dns.asyncresolver
import httpx

from mcplookup_mcp.probe.dns_resolver import DnsLookupError
from mcplookup_mcp.probe.health import USER_AGENT, ssl_context
from mcplookup_mcp.probe.ssrf import BlockedTarget, CheckedTarget, ProbePolicy, check_target

_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class FetchFailed(Exception):
    """A document could not be read; `reason` says why, in words fit for an operator."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class Fetched:
    """`status` 200 (body read), 304 (the stored copy stands) or 404 (no such document)."""

    status: int
    url: str
    body: bytes = b""
    content_type: str = ""
    etag: str | None = None


@dataclass(frozen=True)
class FetchLimits:
    max_bytes: int
    timeout: float
    ca_bundle: str | None = None


async def fetch_document(
    url: str,
    resolver: dns.asyncresolver.Resolver,
    policy: ProbePolicy,
    limits: FetchLimits,
    *,
    accept: str,
    etag: str | None = None,
) -> Fetched:
    """GET `url`; raise `FetchFailed` for anything but 200, 304 and 404."""
    try:
        async with asyncio.timeout(limits.timeout):
            return await _fetch(url, resolver, policy, limits, accept, etag)
    except TimeoutError:
        raise FetchFailed(f"{url}: no complete answer within {limits.timeout:g} s") from None


async def _fetch(
    url: str,
    resolver: dns.asyncresolver.Resolver,
    policy: ProbePolicy,
    limits: FetchLimits,
    accept: str,
    etag: str | None,
) -> Fetched:
    context = ssl_context(limits.ca_bundle)
    headers = {"User-Agent": USER_AGENT, "Accept": accept}
    if etag:
        headers["If-None-Match"] = etag
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(policy.max_redirects + 1):
            response = await _send(url, resolver, policy, context, headers, limits.timeout, stack)
            location = response.headers.get("location")
            if response.status_code in _REDIRECTS and location:
                await response.aclose()
                url = _join(url, location)
                continue
            if response.status_code == 304:
                return Fetched(304, url, etag=response.headers.get("etag") or etag)
            if response.status_code in (404, 410):
                return Fetched(404, url)
            if response.status_code != 200:
                raise FetchFailed(f"{url}: HTTP {response.status_code}")
            body = await _read_capped(response, url, limits.max_bytes)
            return Fetched(
                200,
                url,
                body=body,
                content_type=response.headers.get("content-type", "").split(";")[0].strip().lower(),
                etag=response.headers.get("etag"),
            )
    raise FetchFailed(f"{url}: more than {policy.max_redirects} redirects")


async def _send(
    url: str,
    resolver: dns.asyncresolver.Resolver,
    policy: ProbePolicy,
    context: ssl.SSLContext,
    headers: dict[str, str],
    read_timeout: float,
    stack: contextlib.AsyncExitStack,
) -> httpx.Response:
    """The open (streamed) response; `stack` closes it and its client."""
    target = await checked_target(url, resolver, policy)
    client = await stack.enter_async_context(
        httpx.AsyncClient(
            verify=context, trust_env=False, follow_redirects=False, timeout=httpx.Timeout(read_timeout)
        )
    )
    request = client.build_request(
        "GET",
        target.connect_url,
        headers={**headers, "Host": target.host_header},
        extensions={"sni_hostname": target.host} if target.scheme == "https" else {},
    )
    try:
        response = await client.send(request, stream=True)
    except httpx.HTTPError as exc:
        raise FetchFailed(f"{url}: {type(exc).__name__}") from None
    stack.push_async_callback(response.aclose)
    return response


async def checked_target(
    url: str, resolver: dns.asyncresolver.Resolver, policy: ProbePolicy
) -> CheckedTarget:
    """The address `url` may be fetched from (ssrf.check_target); `FetchFailed` naming the url if none."""
    try:
        return await check_target(url, resolver, policy)
    except BlockedTarget as exc:
        raise FetchFailed(f"{url}: not fetched ({exc.reason})") from None
    except DnsLookupError as exc:
        raise FetchFailed(f"{url}: {exc.message}") from None


def _join(base: str, reference: str) -> str:
    try:
        return str(httpx.URL(base).join(reference))
    except httpx.InvalidURL as exc:
        raise FetchFailed(f"invalid redirect {reference[:100]!r}: {exc}") from None


async def _read_capped(response: httpx.Response, url: str, max_bytes: int) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise FetchFailed(f"{url}: {declared} bytes, more than the {max_bytes} read")
    body = bytearray()
    try:
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > max_bytes:
                raise FetchFailed(f"{url}: more than the {max_bytes} bytes read")
    except httpx.HTTPError as exc:
        raise FetchFailed(f"{url}: {type(exc).__name__}") from None
    return bytes(body)
