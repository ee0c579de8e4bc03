"""Answer shapes shared by the MCP tools (outputSchema) and the REST shim (OpenAPI)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field


class DnsRecord(BaseModel):
    type: Literal["TXT"] = "TXT"
    name: str = Field(description="Where to publish the record, e.g. _mcp-verify.example.com")
    value: str = Field(description="The exact record value, e.g. mcp-verify=3f2a...")


class RegisterResult(BaseModel):
    status: Literal["pending_verification", "listed"]
    name: str = Field(description="The server's registry name: <reversed domain>/<slug>")
    domain: str
    registration_id: str | None = Field(
        None, description="Secret proof of this claim, shown once: verify_domain needs it"
    )
    dns_record: DnsRecord | None = Field(None, description="The TXT record to publish before verify_domain")
    expires_at: datetime | None = Field(None, description="The claim must verify before this time")
    next_step: str


class VerifyResult(BaseModel):
    status: Literal["verified", "pending", "wrong_value", "dns_error"]
    verified: bool
    domain: str
    name: str
    message: str = Field(description="What happened and what to do next")
    retryable: bool = Field(description="True when calling verify_domain again later may succeed")
    attempts: int
    expected_record: DnsRecord
    found: list[str] = Field(default_factory=list, description="TXT values seen at the record name")
    api_key: str | None = Field(
        None, description="The domain's API key (mcpl_...), shown only in this answer; store it now"
    )


class HealthSummary(BaseModel):
    status: str = Field(description="unknown until probed; then healthy, degraded, auth_required, ...")
    uptime_percentage: float | None = None
    avg_response_time_ms: float | None = None
    last_check: datetime | None = None


class ServerOut(BaseModel):
    name: str
    title: str | None = None
    description: str
    version: str | None = None
    domain: str | None = None
    endpoint: str | None = None
    transport: str | None = None
    capabilities: list[str]
    category: str | None = None
    auth_type: str
    website_url: str | None = None
    repository: dict[str, Any] | None = None
    packages: list[dict[str, Any]] = Field(default_factory=list)
    remotes: list[dict[str, Any]] = Field(default_factory=list)
    source: Literal["register", "import"]
    listing_status: Literal["active", "pending", "deleted"]
    verified: bool = Field(description="True when the domain's owner proved control through DNS")
    pending: bool = Field(description="True for an unverified claim (shown only with include_pending)")
    imported: bool = Field(description="True for entries imported from another registry, not DNS-verified")
    remotes_blocked: bool = Field(
        False, description="True when a remote points at a loopback or private address: kept, never offered"
    )
    health: HealthSummary
    trust_score: int
    created_at: datetime
    updated_at: datetime


class Match(BaseModel):
    relevance: float = Field(
        description="Full-text relevance of the stored fields to the query (0 without one)"
    )
    matched: dict[str, list[str]] = Field(
        default_factory=dict, description="Stored field -> query terms (stemmed) found in it"
    )


class DiscoveredServer(ServerOut):
    match: Match


class DiscoverResult(BaseModel):
    servers: list[DiscoveredServer]
    count: int
    query: str | None = None
    sort: str = "relevance"
    next_cursor: str | None = Field(
        None, description="Pass as cursor (same query, filters and sort) for the next page; null on the last"
    )


class CapabilityCount(BaseModel):
    value: str
    servers: int


class CapabilitiesResult(BaseModel):
    capabilities: list[CapabilityCount] = Field(description="Declared capabilities, most common first")
    categories: list[CapabilityCount] = Field(description="Categories, most common first")


class DiscoveryStats(BaseModel):
    listed_servers: int
    verified_servers: int
    imported_servers: int
    pending_claims: int
    healthy_servers: int
    servers_with_blocked_remotes: int
    transports: dict[str, int] = Field(description="Listed servers offering each transport")
    average_trust_score: float
    searches_last_24h: int
    search_p95_ms_last_24h: float | None = None


class GetServerResult(BaseModel):
    server: ServerOut
    other_servers_on_domain: list[str] = Field(
        default_factory=list, description="Names of the domain's other listed servers"
    )


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    field: str | None = None
