"""The registry's vocabularies: the words it stores and answers with, each set written once.

The SQL (migrations' CHECK constraints, the named queries' literals) cannot import them;
tests/test_vocab.py reads those literals and checks them against the sets here.
"""

from __future__ import annotations

from enum import StrEnum


class Transport(StrEnum):
    """How a client reaches a server (mcp_servers.transport, discover's transport filter)."""

    STREAMABLE_HTTP = "streamable-http"
    SSE = "sse"
    STDIO = "stdio"


# Transports with an endpoint: the ones an owner registers and the prober reaches (mcp_server_probed).
REMOTE_TRANSPORTS: tuple[Transport, ...] = (Transport.STREAMABLE_HTTP, Transport.SSE)


class HealthStatus(StrEnum):
    """A probe's classification (probe/health.py), and a server's latest one (mcp_servers.health_status)."""

    # A server's status until its first probe; never a probe's own.
    UNKNOWN = "unknown"
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    AUTH_REQUIRED = "auth_required"
    UNHEALTHY = "unhealthy"
    UNREACHABLE = "unreachable"
    BLOCKED = "blocked"


# What a probe can conclude (health_checks.status).
PROBE_STATUSES: tuple[HealthStatus, ...] = tuple(s for s in HealthStatus if s is not HealthStatus.UNKNOWN)
# A probe that counts as up for uptime: the server answered (401/403 means it wants credentials, alive).
UP_STATUSES: frozenset[HealthStatus] = frozenset(
    {HealthStatus.HEALTHY, HealthStatus.DEGRADED, HealthStatus.AUTH_REQUIRED}
)
# A probe whose handshake completed, so its latency counts in the averages.
MEASURED_STATUSES: frozenset[HealthStatus] = frozenset({HealthStatus.HEALTHY, HealthStatus.DEGRADED})


class ListingStatus(StrEnum):
    """A server row's place in its life (mcp_servers.status)."""

    PENDING = "pending"
    ACTIVE = "active"
    DELETED = "deleted"


class Source(StrEnum):
    """Where a server row came from (mcp_servers.source)."""

    REGISTER = "register"
    IMPORT = "import"


class ClaimStatus(StrEnum):
    """An ownership claim's state (domain_verifications.status)."""

    PENDING = "pending"
    VERIFIED = "verified"
    VOIDED = "voided"
    EXPIRED = "expired"


# Filler: stemmed words (PostgreSQL's english configuration) that say nothing about which server fits
# ("I need an MCP server to help me"); discover_ranked never lets them decide a match unless they are
# all a question says.
FILLER_STEMS: frozenset[str] = frozenset(
    """mcp server model context protocol tool need want use help find let like abl way someth thing app applic
    integr servic pleas could would via ai agent llm claud allow enabl provid interact support implement access
    connect manag work make get i can show look good best""".split()
)
# Actions: the verb of a question ("accept payments") says what to do, the rest what with; they rank but
# weigh little (discover_ranked).
ACTION_STEMS: frozenset[str] = frozenset(
    """take accept save play click run send post read write edit creat build track convert deploy learn order
    studi add updat delet list open check start stop control autom generat upload download publish monitor
    queri analyz talk call fetch keep give put set view watch share""".split()
)
# Words as typed that are never taken for misspellings: filler (each stems into FILLER_STEMS) and stop
# words, which have no stem.
TYPED_FILLER: frozenset[str] = frozenset(
    {"server", "servers", "need", "want", "help", "please", "something", "would", "could", "with"}
)
