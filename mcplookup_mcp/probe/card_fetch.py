"""One GET of a small JSON document a domain publishes about itself (its MCP server card), through the
SSRF guard.

Like a probe: the name is resolved and checked, the request goes to the checked address with the name
as SNI and Host, and the body is capped. Unlike `text_fetch`, no redirect is followed: the card is the
domain's own word at its own address, and anything else is no card.
"""

from __future__ import annotations

import dns.asyncresolver
import httpx

from mcplookup_mcp.probe.health import USER_AGENT, ssl_context
from mcplookup_mcp.probe.ssrf import ProbePolicy
from mcplookup_mcp.probe.text_fetch import FetchFailed, checked_target


async def fetch_card(
    url: str,
    resolver: dns.asyncresolver.Resolver,
    policy: ProbePolicy,
    *,
    read_timeout: float,
    max_bytes: int,
    ca_bundle: str | None = None,
) -> bytes:
    """The body of a 200 answer at `url`; `FetchFailed` (its reason names the url) for anything else.
    `read_timeout` bounds each step (connect, each read), as a probe's client does."""
    target = await checked_target(url, resolver, policy)
    try:
        async with httpx.AsyncClient(
            verify=ssl_context(ca_bundle),
            trust_env=False,
            follow_redirects=False,
            timeout=httpx.Timeout(read_timeout),
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        ) as client:
            request = client.build_request(
                "GET",
                target.connect_url,
                headers={"Host": target.host_header},
                extensions={"sni_hostname": target.host},
            )
            response = await client.send(request, stream=True)
            try:
                if response.status_code != 200:
                    raise FetchFailed(f"{url}: HTTP {response.status_code}")
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > max_bytes:
                        raise FetchFailed(f"{url}: larger than {max_bytes} bytes")
            finally:
                await response.aclose()
    except httpx.HTTPError as exc:
        raise FetchFailed(f"{url}: {type(exc).__name__}") from None
    return bytes(body)
