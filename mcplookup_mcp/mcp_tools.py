"""MCP tools: parse the arguments, call the service, return its answer. No rules live here."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field

from mcplookup_mcp import __version__, keys
from mcplookup_mcp.errors import RegistryError
from mcplookup_mcp.metrics import MCP_TOOL_CALLS
from mcplookup_mcp.models import (
    CapabilitiesResult,
    DiscoverResult,
    DiscoveryStats,
    GetServerResult,
    RegisterResult,
    VerifyResult,
)
from mcplookup_mcp.service import RegistryService

T = TypeVar("T")

INSTRUCTIONS = """\
MCPLookup finds Model Context Protocol servers for a task. Call discover_servers with what you need in
plain words ("send email from gmail", "query a postgres database"); each result has an endpoint to connect
to, whether its domain is DNS-verified, its health and trust score, and why it matched. get_server shows
one server whole. Server owners use register_server, then publish the DNS TXT record it returns, then
call verify_domain."""


class RegistryMCPServer(MCPServer):
    """Refuses arguments a tool does not declare (the SDK would ignore them) and counts outcomes."""

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Any = None) -> Any:
        tool = self._tool_manager.get_tool(name)
        if tool is not None:
            accepted = sorted(tool.parameters.get("properties", {}))
            unknown = sorted(set(arguments) - set(accepted))
            if unknown:
                MCP_TOOL_CALLS.labels(tool=name, outcome="invalid_arguments").inc()
                raise ToolError(
                    f"{name} does not take {', '.join(unknown)}; its arguments are: {', '.join(accepted)}"
                )
        return await super().call_tool(name, arguments, context)


def _given(**kwargs: Any) -> dict[str, Any]:
    return {k: v for k, v in kwargs.items() if v is not None}


async def _run(tool: str, call: Callable[[], Awaitable[T]]) -> T:
    try:
        result = await call()
    except RegistryError as exc:
        MCP_TOOL_CALLS.labels(tool=tool, outcome=exc.slug).inc()
        raise ToolError(exc.message) from None
    MCP_TOOL_CALLS.labels(tool=tool, outcome="ok").inc()
    return result


def _client(ctx: Context) -> str:
    request = ctx.request_context.request
    client = getattr(request, "client", None)
    return str(client.host) if client is not None else "mcp"


def _api_key(ctx: Context) -> str | None:
    headers = ctx.headers or {}
    return keys.bearer_token(headers.get("authorization"))


def build_mcp(service: RegistryService) -> MCPServer:
    mcp = RegistryMCPServer(
        name="mcplookup",
        title="MCPLookup",
        instructions=INSTRUCTIONS,
        version=__version__,
        log_level="WARNING",
    )
    read_only = ToolAnnotations(read_only_hint=True, open_world_hint=False)

    @mcp.tool(
        name="discover_servers",
        title="Discover MCP servers",
        annotations=read_only,
        description=(
            "Find MCP servers for a task. Describe the need in plain words or keywords; results are ranked by "
            "relevance, then verification and trust. Only DNS-verified and imported servers are listed unless "
            "include_pending is true. Each result's match.matched says which stored fields held which terms."
        ),
    )
    async def discover_servers(
        query: Annotated[
            str, Field(description="What you need, e.g. 'manage my google calendar events'")
        ] = "",
        domain: Annotated[
            str | None, Field(description="Only servers on this domain or its subdomains")
        ] = None,
        capabilities: Annotated[
            list[str] | None,
            Field(
                description="Only servers declaring these capabilities (all of them, or see capability_match)"
            ),
        ] = None,
        capability_match: Annotated[
            str | None, Field(description="'all' (default) or 'any' of the given capabilities")
        ] = None,
        exclude_capabilities: Annotated[
            list[str] | None, Field(description="Leave out servers declaring any of these")
        ] = None,
        category: Annotated[str | None, Field(description="Only servers in this category")] = None,
        transport: Annotated[
            str | None, Field(description="streamable-http, sse, or stdio (installable packages)")
        ] = None,
        auth_type: Annotated[
            str | None, Field(description="none, api_key, oauth2, bearer, basic or custom")
        ] = None,
        verified_only: Annotated[
            bool, Field(description="Only servers whose domain is DNS-verified")
        ] = False,
        healthy_only: Annotated[bool, Field(description="Only servers whose last probe was healthy")] = False,
        min_trust_score: Annotated[
            int | None, Field(ge=0, le=100, description="Only servers with at least this trust score")
        ] = None,
        sort: Annotated[
            str | None, Field(description="relevance (default), trust, latency, newest or name")
        ] = None,
        limit: Annotated[int, Field(ge=1, le=100, description="How many results, 1 to 100")] = 10,
        cursor: Annotated[
            str | None, Field(description="next_cursor from the previous page, same query and filters")
        ] = None,
        include_pending: Annotated[
            bool, Field(description="Also show unverified claims, flagged pending (not yet trusted)")
        ] = False,
    ) -> DiscoverResult:
        data = _given(
            query=query,
            domain=domain,
            capabilities=capabilities,
            capability_match=capability_match,
            exclude_capabilities=exclude_capabilities,
            category=category,
            transport=transport,
            auth_type=auth_type,
            verified_only=verified_only,
            healthy_only=healthy_only,
            min_trust_score=min_trust_score,
            sort=sort,
            limit=limit,
            cursor=cursor,
            include_pending=include_pending,
        )
        return await _run("discover_servers", lambda: service.discover(data, transport="mcp"))

    @mcp.tool(
        name="browse_capabilities",
        title="Browse capabilities and categories",
        annotations=read_only,
        description=(
            "Capability keywords and categories declared by listed servers, with how many servers declare "
            "each, most common first: use them as discover_servers filters."
        ),
    )
    async def browse_capabilities(
        limit: Annotated[int, Field(ge=1, le=100, description="How many of each, 1 to 100")] = 100,
    ) -> CapabilitiesResult:
        return await _run(
            "browse_capabilities", lambda: service.discovery.browse_capabilities({"limit": limit})
        )

    @mcp.tool(
        name="get_discovery_stats",
        title="Registry statistics",
        annotations=read_only,
        description="Registry-wide figures: listed, verified, imported and healthy servers, transports, searches.",
    )
    async def get_discovery_stats() -> DiscoveryStats:
        return await _run("get_discovery_stats", lambda: service.discovery.stats())

    @mcp.tool(
        name="get_server",
        title="Get one MCP server",
        annotations=read_only,
        description=(
            "Show one listed server whole, by its registry name (e.g. com.example/mail) or by domain "
            "(e.g. example.com). Give exactly one of the two."
        ),
    )
    async def get_server(
        name: Annotated[str | None, Field(description="Registry name, e.g. com.example/mail")] = None,
        domain: Annotated[str | None, Field(description="Domain, e.g. example.com")] = None,
    ) -> GetServerResult:
        return await _run("get_server", lambda: service.get_server(_given(name=name, domain=domain)))

    @mcp.tool(
        name="register_server",
        title="Register an MCP server",
        annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False),
        description=(
            "Claim a domain's MCP server. Returns a secret registration_id (shown once) and a DNS TXT record to "
            "publish; the server is listed only after verify_domain succeeds. The server's name becomes "
            "<reversed domain>/<slug>, e.g. com.example/mail. Under a domain that is already verified, send "
            "the domain's API key as 'Authorization: Bearer mcpl_...' and the server is listed at once."
        ),
    )
    async def register_server(
        ctx: Context,
        domain: Annotated[str, Field(description="The domain you control, e.g. example.com")],
        endpoint: Annotated[
            str,
            Field(
                description="The server's https URL, on the domain or a subdomain, e.g. https://mcp.example.com/mcp"
            ),
        ],
        description: Annotated[
            str | None, Field(description="What the server does, for people and agents")
        ] = None,
        slug: Annotated[
            str | None, Field(description="Short name under the domain (default 'mcp'), e.g. 'mail'")
        ] = None,
        title: Annotated[str | None, Field(description="Display name")] = None,
        transport: Annotated[str | None, Field(description="streamable-http (default) or sse")] = None,
        capabilities: Annotated[
            list[str] | None, Field(description="Keywords for what it can do, e.g. ['email', 'calendar']")
        ] = None,
        category: Annotated[str | None, Field(description="One category word, e.g. 'productivity'")] = None,
        auth_type: Annotated[
            str | None, Field(description="none (default), api_key, oauth2, bearer, basic or custom")
        ] = None,
        website_url: Annotated[str | None, Field(description="Documentation or home page URL")] = None,
        repository_url: Annotated[str | None, Field(description="Source repository URL")] = None,
        version: Annotated[str | None, Field(description="The server's version, e.g. 1.2.0")] = None,
        recover_ownership: Annotated[
            bool | None,
            Field(
                description="true to prove control of an already verified domain again (lost key, new owner)"
            ),
        ] = None,
    ) -> RegisterResult:
        data = _given(
            domain=domain,
            endpoint=endpoint,
            description=description,
            slug=slug,
            title=title,
            transport=transport,
            capabilities=capabilities,
            category=category,
            auth_type=auth_type,
            website_url=website_url,
            repository_url=repository_url,
            version=version,
            recover_ownership=recover_ownership,
        )
        return await _run(
            "register_server", lambda: service.register(data, api_key=_api_key(ctx), client=_client(ctx))
        )

    @mcp.tool(
        name="verify_domain",
        title="Verify domain ownership",
        annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True),
        description=(
            "Check the DNS TXT record of a claim made with register_server. On success the domain is verified, "
            "the server is listed, and the domain's API key is returned once. Otherwise the answer says "
            "exactly which record to publish or fix, and whether to try again."
        ),
    )
    async def verify_domain(
        ctx: Context,
        domain: Annotated[str, Field(description="The claimed domain, e.g. example.com")],
        registration_id: Annotated[str, Field(description="The mcpreg_... id register_server returned")],
    ) -> VerifyResult:
        data = {"domain": domain, "registration_id": registration_id}
        return await _run("verify_domain", lambda: service.verify(data, client=_client(ctx)))

    return mcp
