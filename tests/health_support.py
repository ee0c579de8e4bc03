"""Shared set-up for the health tests: listed servers inserted as rows, settings that reach 127.0.0.2, and
one probe of a loopback target."""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from datetime import datetime
from uuid import UUID

import dns.asyncresolver
import psycopg
from mcp_targets import TARGET_IP

from mcplookup_mcp.core.settings import Settings
from mcplookup_mcp.probe.health import ProbeResult, Transport, probe
from mcplookup_mcp.probe.ssrf import ProbePolicy

HOST = "mcp.example.test"


def probe_settings(settings: Settings, *ports: int, **changes: object) -> Settings:
    return replace(
        settings,
        probe_allow_cidrs=(ipaddress.ip_network(f"{TARGET_IP}/32"),),
        probe_ports=frozenset(ports),
        probe_timeout=3.0,
        probe_degraded_ms=1500.0,
        **changes,  # type: ignore[arg-type]
    )


def add_server(
    db_url: str,
    name: str,
    endpoint: str | None,
    *,
    domain: str = "example.test",
    transport: str = "streamable-http",
    auth_type: str = "none",
    verified: bool = True,
    listed_at: datetime | None = None,
) -> UUID:
    """A listed server, as verification would leave it."""
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "INSERT INTO domains (domain, verified) VALUES (%s, %s) ON CONFLICT DO NOTHING",
            (domain, verified),
        )
        row = conn.execute(
            "INSERT INTO mcp_servers (name, domain, endpoint, transport, auth_type, source, status, verified,"
            " remotes, created_at, published_at)"
            " VALUES (%s, %s, %s, %s, %s, 'register', 'active', %s, '[]', coalesce(%s, now()),"
            " coalesce(%s, now())) RETURNING id",
            (name, domain, endpoint, transport, auth_type, verified, listed_at, listed_at),
        ).fetchone()
    assert row is not None
    return UUID(str(row[0]))


def fetch(db_url: str, query: str, *params: object) -> list[tuple[object, ...]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(query, params).fetchall()


async def probe_loopback(
    probe_resolver: dns.asyncresolver.Resolver,
    url: str,
    *ports: int,
    transport: Transport = "streamable-http",
    deadline: float = 5.0,
    degraded_ms: float = 1500.0,
    ca_bundle: str | None = None,
    max_bytes: int = 1024 * 1024,
) -> ProbeResult:
    policy = ProbePolicy(
        allow_cidrs=(ipaddress.ip_network(f"{TARGET_IP}/32"),),
        allowed_ports=frozenset(ports),
        allow_plain_http=True,
    )
    return await probe(
        url,
        transport=transport,
        resolver=probe_resolver,
        policy=policy,
        timeout=deadline,
        degraded_ms=degraded_ms,
        ca_bundle=ca_bundle,
        max_bytes=max_bytes,
    )
