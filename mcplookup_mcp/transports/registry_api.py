"""/v0.1: the official MCP Registry read API, for aggregators and registry clients. Thin: parse, call, answer."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mcplookup_mcp.services.registry_listing import LIST_FIELDS, RegistryListing
from mcplookup_mcp.transports.rest import _guard, _query


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

    return [
        Route("/v0.1/servers", _guard(list_servers), methods=["GET"], name="registry_list"),
        Route(
            "/v0.1/servers/{name:path}/versions/{version}",
            _guard(version),
            methods=["GET"],
            name="registry_version",
        ),
        Route(
            "/v0.1/servers/{name:path}/versions", _guard(versions), methods=["GET"], name="registry_versions"
        ),
    ]
