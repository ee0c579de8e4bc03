"""The client address behind proxies: only configured proxies are believed, and the client is the
rightmost hop that is not one of them, whatever the client wrote to the left."""

from __future__ import annotations

import httpx
import pytest
from conftest import free_port
from registration_support import LISTING
from stack import Replica, replica_env

from mcplookup_mcp.core.client_address import TrustedProxies
from mcplookup_mcp.core.settings import ConfigError, load_settings


@pytest.mark.parametrize(
    ("proxies", "peer", "forwarded", "client"),
    [
        # No proxy configured: the header is the client's own text and is ignored.
        ((), "203.0.113.9", "198.51.100.1", "203.0.113.9"),
        # A trusted proxy: its own entry (the rightmost) names the client; what the client wrote before is not.
        (("127.0.0.1",), "127.0.0.1", "1.2.3.4, 203.0.113.9", "203.0.113.9"),
        # Two trusted proxies in a row (a CDN range, then nginx): skipped, right to left.
        (("127.0.0.1", "10.0.0.0/8"), "127.0.0.1", "6.6.6.6, 203.0.113.9, 10.1.2.3", "203.0.113.9"),
        # A peer that is not a proxy writes whatever it likes: not believed.
        (("10.0.0.0/8",), "203.0.113.9", "10.1.2.3", "203.0.113.9"),
        # "*": the connecting peer is believed for one hop only, never the leftmost entry.
        (("*",), "192.0.2.1", "1.2.3.4, 5.6.7.8, 203.0.113.9", "203.0.113.9"),
        # Every hop is a proxy: the leftmost one is as far as we can see.
        (("127.0.0.1", "10.0.0.0/8"), "127.0.0.1", "10.0.0.5", "10.0.0.5"),
        # A proxy passed on something that is no address: stop at the proxy nearest to it.
        (("127.0.0.1", "10.0.0.0/8"), "127.0.0.1", "junk, 10.0.0.5", "10.0.0.5"),
        ((("::1"),), "::1", "2001:db8::7", "2001:db8::7"),
        (("127.0.0.1",), "127.0.0.1", "203.0.113.9:4711", "203.0.113.9"),
    ],
)
def test_the_client_is_the_rightmost_untrusted_hop(
    proxies: tuple[str, ...], peer: str, forwarded: str, client: str
) -> None:
    assert TrustedProxies(proxies).client(peer, forwarded) == client


def test_trusted_proxies_are_checked_at_start() -> None:
    with pytest.raises(ConfigError, match="MCPLOOKUP_TRUSTED_PROXIES: 'nginx' is not an IP address"):
        load_settings({"MCPLOOKUP_TRUSTED_PROXIES": "127.0.0.1, nginx"})
    assert load_settings({}).trusted_proxies == ()
    assert load_settings({"MCPLOOKUP_TRUSTED_PROXIES": "10.0.0.0/8, ::1"}).trusted_proxies == (
        "10.0.0.0/8",
        "::1",
    )


def _registrations(base: str, forwarded: list[str]) -> list[int]:
    statuses = []
    with httpx.Client(base_url=base, timeout=20) as http:
        for index, address in enumerate(forwarded):
            listing = dict(
                LISTING,
                domain=f"spoof{index}.example.test",
                endpoint=f"https://mcp.spoof{index}.example.test/mcp",
            )
            statuses.append(
                http.post("/api/v1/register", json=listing, headers={"X-Forwarded-For": address}).status_code
            )
    return statuses


@pytest.mark.slow
def test_a_changing_forwarded_for_does_not_escape_the_limit(db_url: str) -> None:
    """With MCPLOOKUP_TRUSTED_PROXIES="*" the served app took the leftmost X-Forwarded-For entry, which
    the client writes: 40 registrations a minute, each behind a new made-up entry, were all accepted
    against a limit of 30. The rightmost entry is the one the proxy wrote (here 203.0.113.5)."""
    replica = Replica(
        free_port(),
        replica_env(db_url, None, MCPLOOKUP_TRUSTED_PROXIES="*", MCPLOOKUP_RATE_LIMIT_PER_MINUTE="30"),
    ).start()
    try:
        replica.wait_ready()
        statuses = _registrations(replica.base_url, [f"198.51.100.{n}, 203.0.113.5" for n in range(40)])
    finally:
        replica.stop()
    assert statuses[:30] == [202] * 30
    assert set(statuses[30:]) == {429}
