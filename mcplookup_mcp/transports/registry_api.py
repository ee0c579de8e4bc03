"""/v0.1 and /v0: the official MCP Registry read API, for aggregators and registry clients. Thin: parse, call, answer.

The official registry still answers /v0 (older clients use it) in the same shape as /v0.1, so both
prefixes are routed to the same handlers.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mcplookup_mcp.services.registry_listing import LIST_FIELDS, RegistryListing
from mcplookup_mcp.transports.rest import _guard, _query

PREFIXES = ("/v0.1", "/v0")


def routes(listing: RegistryListing) -> list[Route]:
    async def list_servers(request: Request) -> Response:
        return JSONResponse(await listing.list(_query(request, {k: k for k in LIST_FIELDS})))

    async def versions(request: Request) -> Response:
        data = _query(request, {"include_deleted": "include_deleted"})
        return JSONResponse(await listing.versions(request.path_params["name"], data))

    async def version(request: Request) -> Response:
        data = _query(request, {"include_deleted": "include_deleted"})
        params = request.path_params
        return JSONResponse(await listing.version(params["name"], params["version"], data))

    found: list[Route] = []
    for prefix in PREFIXES:
        # Route names stay unique: /v0.1's are the ones the rest of the app names.
        suffix = "" if prefix == "/v0.1" else "_v0"
        found += [
            Route(f"{prefix}/servers", _guard(list_servers), methods=["GET"], name=f"registry_list{suffix}"),
            Route(
                f"{prefix}/servers/{{name:path}}/versions/{{version}}",
                _guard(version),
                methods=["GET"],
                name=f"registry_version{suffix}",
            ),
            Route(
                f"{prefix}/servers/{{name:path}}/versions",
                _guard(versions),
                methods=["GET"],
                name=f"registry_versions{suffix}",
            ),
        ]
    return found
