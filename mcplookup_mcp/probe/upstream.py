"""Reading an upstream registry's `/v0.1/servers` pages: one request, its limits, and what went wrong.

The upstream's address is configuration, not third-party input, but it goes through the prober's SSRF
guard all the same (a name that comes to resolve to an internal address is refused), and the request is
sent to the address the guard checked. No redirects are followed, the body is read up to a cap, and
every request has a deadline. Errors say whether trying again later can help (`retryable`) and, for a
429 or 503 with `Retry-After`, when.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import certifi
import dns.asyncresolver
import httpx

from mcplookup_mcp.probe.dns_resolver import DnsLookupError
from mcplookup_mcp.probe.ssrf import BlockedTarget, ProbePolicy, check_target

USER_AGENT = "mcplookup-sync/1 (+https://github.com/mcplookup)"
MAX_RETRY_AFTER = 3600.0


class UpstreamError(Exception):
    """An upstream page could not be read; `kind` classifies it, `message` says it for an operator."""

    RETRYABLE = frozenset({"rate_limited", "server_error", "timeout", "network"})

    def __init__(self, kind: str, message: str, retry_after: float | None = None) -> None:
        self.kind = kind
        self.message = message
        self.retry_after = retry_after
        super().__init__(f"{kind}: {message}")

    @property
    def retryable(self) -> bool:
        return self.kind in self.RETRYABLE


@dataclass(frozen=True)
class UpstreamPage:
    entries: list[Any]
    next_cursor: str | None
    # The upstream's clock when it answered (its Date header), None when it sent none we could read.
    served_at: datetime | None


def _retry_after(value: str | None, now: datetime) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, min((when - now).total_seconds(), MAX_RETRY_AFTER))


def _served_at(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_page(body: bytes) -> tuple[list[Any], str | None]:
    """The entries and nextCursor of a list answer; UpstreamError("garbage") for anything else."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise UpstreamError("garbage", f"the answer is not JSON: {str(exc)[:120]}") from None
    if not isinstance(document, dict) or not isinstance(document.get("servers"), list):
        raise UpstreamError("garbage", "the answer is not a server list ({servers: [...], metadata: {...}})")
    metadata = document.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise UpstreamError("garbage", "metadata is not an object")
    cursor = metadata.get("nextCursor")
    if cursor is not None and (not isinstance(cursor, str) or len(cursor) > 2000):
        raise UpstreamError("garbage", "metadata.nextCursor is not a string of at most 2000 characters")
    return document["servers"], cursor or None


class UpstreamClient:
    def __init__(
        self,
        resolver: dns.asyncresolver.Resolver,
        policy: ProbePolicy,
        *,
        timeout: float,
        max_bytes: int,
        ca_bundle: str | None = None,
    ) -> None:
        self.resolver = resolver
        self.policy = policy
        self.timeout = timeout
        self.max_bytes = max_bytes
        self._client = httpx.AsyncClient(
            verify=ssl.create_default_context(cafile=ca_bundle or certifi.where()),
            trust_env=False,
            follow_redirects=False,
            timeout=httpx.Timeout(timeout),
            # identity: the body cap then counts the bytes that are parsed.
            headers={"User-Agent": USER_AGENT, "Accept": "application/json", "Accept-Encoding": "identity"},
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def fetch_page(
        self, base_url: str, *, updated_since: datetime | None, cursor: str | None, limit: int
    ) -> UpstreamPage:
        params: dict[str, str] = {"limit": str(limit)}
        if updated_since is not None:
            params["updated_since"] = _rfc3339(updated_since)
        if cursor:
            params["cursor"] = cursor
        url = str(httpx.URL(base_url.rstrip("/") + "/v0.1/servers").copy_merge_params(params))
        try:
            target = await check_target(url, self.resolver, self.policy)
        except BlockedTarget as exc:
            raise UpstreamError("blocked", exc.reason) from None
        except DnsLookupError as exc:
            raise UpstreamError("network", f"DNS: {exc}") from None
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        request = self._client.build_request(
            "GET", target.connect_url, headers={"Host": target.host_header}, extensions=extensions
        )
        try:
            # The whole exchange has one deadline: httpx's own timeouts are per read, and a server
            # dripping a byte at a time would never trip them.
            async with asyncio.timeout(self.timeout):
                response = await self._client.send(request, stream=True)
                try:
                    body = await self._read(response)
                finally:
                    await response.aclose()
        except (httpx.TimeoutException, TimeoutError):
            raise UpstreamError("timeout", f"no answer within {self.timeout:g} s") from None
        except httpx.HTTPError as exc:
            raise UpstreamError("network", f"{type(exc).__name__}: {str(exc)[:160]}") from None
        now = datetime.now(UTC)
        status = response.status_code
        if status == 429 or status == 503:
            kind = "rate_limited" if status == 429 else "server_error"
            wait = _retry_after(response.headers.get("retry-after"), now)
            raise UpstreamError(kind, f"HTTP {status}", retry_after=wait)
        if status >= 500:
            raise UpstreamError("server_error", f"HTTP {status}")
        if 300 <= status < 400:
            raise UpstreamError(
                "redirected", f"HTTP {status} to {response.headers.get('location', '?')[:200]}"
            )
        if status != 200:
            raise UpstreamError("refused", f"HTTP {status}: {body[:200].decode('utf-8', 'replace')}")
        entries, next_cursor = parse_page(body)
        return UpstreamPage(entries, next_cursor, _served_at(response.headers.get("date")))

    async def _read(self, response: httpx.Response) -> bytes:
        declared = response.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_bytes:
            raise UpstreamError("too_large", f"the page is {declared} bytes; the cap is {self.max_bytes}")
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_raw():
            size += len(chunk)
            if size > self.max_bytes:
                raise UpstreamError("too_large", f"the page is over the cap of {self.max_bytes} bytes")
            chunks.append(chunk)
        raw = b"".join(chunks)
        encoding = response.headers.get("content-encoding", "").strip().lower()
        if encoding and encoding != "identity":
            # Decoded by hand so that the cap holds for the decoded size too (a small gzip can expand).
            raise UpstreamError("garbage", f"content-encoding {encoding} is not accepted")
        return raw
