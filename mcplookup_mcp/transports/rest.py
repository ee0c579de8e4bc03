"""The REST shim: the same service calls as the MCP tools, for curl and scripts. Errors are RFC 9457."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mcplookup_mcp.core import keys
from mcplookup_mcp.core.discover_args import BROWSE_CAPABILITIES, DISCOVER
from mcplookup_mcp.core.errors import InvalidInput, RegistryError
from mcplookup_mcp.core.models import DiscoverResult
from mcplookup_mcp.core.next_steps import REST
from mcplookup_mcp.services.monitor import HealthMonitor
from mcplookup_mcp.services.ownership import OwnershipService
from mcplookup_mcp.services.service import RegistryService
from mcplookup_mcp.transports.body_limit import read_body
from mcplookup_mcp.transports.request_input import json_value, query_pairs

# For a cache in front (nginx, a CDN): a listing's change reaches a cache that honours these headers
# within max-age + stale-while-revalidate = 30 s (docs/architecture.md, "the caches in front").
DISCOVER_CACHE_CONTROL = "public, max-age=10, stale-while-revalidate=20"
PROBLEM_TYPE_BASE = "https://mcplookup.org/problems/"


def problem(
    status: int,
    title: str,
    detail: str,
    slug: str,
    field: str | None = None,
    headers: dict[str, str] | None = None,
    extensions: dict[str, Any] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if field:
        body["field"] = field
    body.update(extensions or {})
    return JSONResponse(body, status_code=status, media_type="application/problem+json", headers=headers)


def problem_from(exc: RegistryError) -> JSONResponse:
    headers = {"Retry-After": str(exc.retry_after)} if hasattr(exc, "retry_after") else None
    if exc.status == 401:
        headers = {"WWW-Authenticate": 'Bearer realm="mcplookup"'}
    title = (type(exc).__doc__ or "Error").strip().split("\n")[0]
    return problem(exc.status, title, exc.message, exc.slug, exc.field, headers, exc.extensions())


def _json(model: BaseModel, status: int = 200) -> Response:
    # Encoded by pydantic in one pass: model_dump followed by json.dumps took a third of a cached
    # discover's time.
    return Response(model.model_dump_json(), status_code=status, media_type="application/json")


Handler = Callable[[Request], Awaitable[Response]]


def _guard(handler: Handler) -> Handler:
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except RegistryError as exc:
            return problem_from(exc)

    return wrapped


async def _body(request: Request, limit: int) -> dict[str, Any]:
    if request.headers.get("content-type", "").split(";")[0].strip() not in ("application/json", ""):
        raise InvalidInput("send the body as JSON with Content-Type: application/json", field="content-type")
    data = json_value(await read_body(request, limit) or b"{}")
    if not isinstance(data, dict):
        raise InvalidInput("the body must be a JSON object")
    return data


def _query(request: Request, renames: dict[str, str]) -> dict[str, Any]:
    """Query parameters under the service's names; unknown ones are refused (discover's and
    browse_capabilities' come from their declarations, core/discover_args.py)."""
    data: dict[str, Any] = {}
    given: dict[str, list[str]] = {}
    for key, value in query_pairs(request):
        given.setdefault(key, []).append(value)
    for key, values in given.items():
        if key not in renames:
            raise InvalidInput(f"unknown query parameter {key!r}; accepted: {', '.join(renames)}", field=key)
        if len(values) > 1:
            raise InvalidInput(f"query parameter {key!r} was given more than once", field=key)
        data[renames[key]] = values[0]
    return data


def _api_key(request: Request) -> str | None:
    return keys.bearer_token(request.headers.get("authorization"))


async def _body_with_path(request: Request, limit: int, field: str, message: str) -> dict[str, Any]:
    """The JSON body plus the path parameter `field`, which the body may not repeat."""
    data = await _body(request, limit)
    if field in data:
        raise InvalidInput(message, field=field)
    data[field] = request.path_params[field]
    return data


def _etag(answer: DiscoverResult) -> str:
    """A strong validator naming the answer's content, computed once per cached answer."""
    digest = answer.encoded_as("etag", lambda a: hashlib.sha256(a.encoded()).hexdigest()[:32].encode())
    return '"' + digest.decode() + '"'


def _conditional(request: Request, body: bytes, etag: str) -> Response:
    headers = {"ETag": etag, "Cache-Control": DISCOVER_CACHE_CONTROL}
    asked = request.headers.get("if-none-match")
    if asked is not None:
        tags = {tag.strip().removeprefix("W/") for tag in asked.split(",")}
        if etag in tags or "*" in tags:
            return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def routes(service: RegistryService, owner: OwnershipService) -> list[Route]:
    limit = service.settings.max_body_bytes

    async def discover(request: Request) -> Response:
        data = DISCOVER.from_query(query_pairs(request))
        answer = await service.discover(
            data, transport="rest", client=_client(request), api_key=_api_key(request)
        )
        return _conditional(request, answer.encoded(), _etag(answer))

    async def capabilities(request: Request) -> Response:
        data = BROWSE_CAPABILITIES.from_query(query_pairs(request))
        return _json(await service.browse_capabilities(data))

    async def stats(request: Request) -> Response:
        _query(request, {})
        return _json(await service.stats())

    async def get_server(request: Request) -> Response:
        _query(request, {})
        return _json(await service.get_server({"name": request.path_params["name"]}, steps=REST))

    async def get_domain(request: Request) -> Response:
        _query(request, {})
        return _json(await service.get_server({"domain": request.path_params["domain"]}, steps=REST))

    async def register(request: Request) -> Response:
        _query(request, {})
        result = await service.register(
            await _body(request, limit), api_key=_api_key(request), client=_client(request), steps=REST
        )
        return _json(result, status=201 if result.status == "listed" else 202)

    async def verify(request: Request) -> Response:
        _query(request, {})
        return _json(await service.verify(await _body(request, limit), client=_client(request), steps=REST))

    return [
        Route("/api/v1/discover", _guard(discover), methods=["GET"], name="discover"),
        Route("/api/v1/capabilities", _guard(capabilities), methods=["GET"], name="capabilities"),
        Route("/api/v1/stats", _guard(stats), methods=["GET"], name="stats"),
        Route("/api/v1/servers/{name:path}", _guard(get_server), methods=["GET"], name="get_server"),
        Route("/api/v1/domains/{domain}", _guard(get_domain), methods=["GET"], name="get_domain"),
        Route("/api/v1/register", _guard(register), methods=["POST"], name="register"),
        Route("/api/v1/verify", _guard(verify), methods=["POST"], name="verify"),
        *_ownership_routes(owner, limit),
    ]


def _ownership_routes(owner: OwnershipService, limit: int) -> list[Route]:
    """Owner-only routes; the domain's key arrives as `Authorization: Bearer mcpl_...`."""

    async def update_server(request: Request) -> Response:
        _query(request, {})
        data = await _body_with_path(
            request, limit, "name", "the server's name is in the path; it cannot be changed"
        )
        return _json(await owner.update_server(data, api_key=_api_key(request), steps=REST))

    async def delete_server(request: Request) -> Response:
        _query(request, {})
        return _json(
            await owner.delete_server(
                {"name": request.path_params["name"]}, api_key=_api_key(request), steps=REST
            )
        )

    async def rotate_key(request: Request) -> Response:
        _query(request, {})
        data = await _body_with_path(request, limit, "domain", "the domain is in the path")
        return _json(await owner.rotate_key(data, api_key=_api_key(request), steps=REST))

    async def revoke_key(request: Request) -> Response:
        _query(request, {})
        data = await _body(request, limit)
        if data:
            raise InvalidInput("this route takes no body fields; the domain is in the path")
        return _json(
            await owner.revoke_key(
                {"domain": request.path_params["domain"]}, api_key=_api_key(request), steps=REST
            )
        )

    return [
        Route("/api/v1/servers/{name:path}", _guard(update_server), methods=["PATCH"], name="update_server"),
        Route("/api/v1/servers/{name:path}", _guard(delete_server), methods=["DELETE"], name="delete_server"),
        Route(
            "/api/v1/domains/{domain}/keys/rotate", _guard(rotate_key), methods=["POST"], name="rotate_key"
        ),
        Route(
            "/api/v1/domains/{domain}/keys/revoke", _guard(revoke_key), methods=["POST"], name="revoke_key"
        ),
    ]


def health_routes(monitor: HealthMonitor) -> list[Route]:
    async def health(request: Request) -> Response:
        data = _query(request, {"realtime": "realtime"})
        target = request.path_params["name"]
        # Registry names hold a slash (com.example/mail); domains never do.
        data["name" if "/" in target else "domain"] = target
        return _json(await monitor.get_health(data, client=_client(request), steps=REST))

    return [Route("/api/v1/health/{name:path}", _guard(health), methods=["GET"], name="server_health")]
