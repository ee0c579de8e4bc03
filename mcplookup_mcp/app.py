"""The ASGI application: /mcp, /api/v1, /health, /ready, /metrics, and the lifespan that owns resources."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import random
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import structlog
from mcp.server.transport_security import TransportSecuritySettings
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mcplookup_mcp import __version__
from mcplookup_mcp.core import request_context
from mcplookup_mcp.core.client_address import ClientAddressMiddleware, TrustedProxies
from mcplookup_mcp.core.errors import RegistryError
from mcplookup_mcp.core.metrics import (
    DB_POOL_IN_USE,
    DB_POOL_WAITING,
    DB_UP,
    DISCOVER_SHARED_CACHE,
    HTTP_DURATION,
    HTTP_REQUESTS,
    MCP_TOOL_DURATION,
    TOTAL_REGISTERED_SERVERS,
    exposition,
    redis_up_gauge,
)
from mcplookup_mcp.core.models import DiscoverResult
from mcplookup_mcp.core.settings import Settings
from mcplookup_mcp.probe.dns_resolver import make_resolver
from mcplookup_mcp.services.answer_cache import SharedAnswers
from mcplookup_mcp.services.background import every, reverify_domains, sweep_claims
from mcplookup_mcp.services.embedding_worker import EmbeddingWorker
from mcplookup_mcp.services.monitor import HealthMonitor
from mcplookup_mcp.services.ownership import OwnershipService
from mcplookup_mcp.services.ratelimit import Budgets, Limiter, make_limiter
from mcplookup_mcp.services.registry_listing import RegistryListing
from mcplookup_mcp.services.scheduler import Scheduler
from mcplookup_mcp.services.service import RegistryService, utcnow
from mcplookup_mcp.services.third_party import ThirdPartyReader
from mcplookup_mcp.services.upstream_sync import build_sync, refresh_sync_gauges
from mcplookup_mcp.store.generation_feed import GenerationFeed
from mcplookup_mcp.store.migrate import pending_migrations
from mcplookup_mcp.store.redis_store import RedisStore
from mcplookup_mcp.store.repository import Repository, make_pool
from mcplookup_mcp.store.standby import CHECK_SECONDS as STANDBY_CHECK_SECONDS
from mcplookup_mcp.store.standby import Standbys
from mcplookup_mcp.transports.body_limit import McpBodyLimit
from mcplookup_mcp.transports.mcp_fast_path import DiscoverFastPath
from mcplookup_mcp.transports.mcp_http import McpHttpGate
from mcplookup_mcp.transports.mcp_tools import RegistryMCPServer, build_mcp
from mcplookup_mcp.transports.metrics_port import serve_metrics
from mcplookup_mcp.transports.openapi import build_openapi
from mcplookup_mcp.transports.registry_api import routes as registry_routes
from mcplookup_mcp.transports.rest import health_routes, problem, problem_from
from mcplookup_mcp.transports.rest import routes as rest_routes
from mcplookup_mcp.transports.web import routes as web_routes

if TYPE_CHECKING:
    import dns.asyncresolver

log = structlog.get_logger("mcplookup")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
GAUGE_REFRESH_SECONDS = 15.0


def _route_template(scope: Scope) -> str:
    """The path template of the route that took the request (Starlette's router records it in the
    scope), or "other": metrics labels stay few whatever paths clients send."""
    route = scope.get("route")
    return route.path if isinstance(route, Route) else "other"


class ObserveMiddleware:
    """Request id, access log and the HTTP metrics, labelled by route template (bounded cardinality).

    The request id is the caller's X-Request-ID when it is a plain token, else a new one; either way it
    is echoed in the response and bound to every log line of the request. An MCP tools/call is also
    timed under its tool's name (mcp_tool_call_duration_seconds), so MCP discovery has a latency series of
    its own beside path="/api/v1/discover"."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        # Unique, not secret: the Mersenne Twister (reseeded in each forked worker) costs no system call.
        request_id = given if _REQUEST_ID.match(given) else f"{random.getrandbits(64):016x}"
        client = scope.get("client")
        info = request_context.RequestInfo(
            request_id=request_id,
            transport="mcp" if scope["path"] == "/mcp" else "rest",
            client=client[0] if client else None,
            user_agent=headers.get(b"user-agent", b"").decode("latin-1") or None,
        )
        status = 500
        started = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        token = request_context.begin(info)
        # bind/reset directly: structlog's bound_contextvars, a generator context manager, cost as much again.
        bound = structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            request_context.end(token)
            elapsed = time.perf_counter() - started
            path = _route_template(scope)
            labels = (scope["method"], path, str(status))
            HTTP_DURATION.labels(*labels).observe(elapsed)
            HTTP_REQUESTS.labels(*labels).inc()
            extra: dict[str, str] = {}
            if info.tool is not None:
                outcome = info.outcome or "ok"
                MCP_TOOL_DURATION.labels(info.tool, outcome).observe(elapsed)
                extra = {"tool": info.tool, "outcome": outcome}
            log.info(
                "request",
                method=scope["method"],
                path=path,
                status=status,
                duration_ms=round(elapsed * 1000, 2),
                **extra,
            )
            structlog.contextvars.reset_contextvars(**bound)


def create_app(
    settings: Settings,
    database_url: str,
    *,
    clock: Callable[[], datetime] = utcnow,
    background: bool = True,
    metrics_port_shared: bool = False,
) -> Starlette:
    parts = build_parts(settings, database_url, clock)
    app = Starlette(
        routes=routes(parts),
        lifespan=lifespan(parts, background=background, metrics_port_shared=metrics_port_shared),
        middleware=[
            Middleware(ClientAddressMiddleware, proxies=TrustedProxies(settings.trusted_proxies)),
            Middleware(ObserveMiddleware),
        ],
        exception_handlers={
            404: _not_found,
            405: _method_not_allowed,
            RegistryError: _registry_error,
            500: _server_error,
        },
    )
    app.state.service = parts.service
    app.state.monitor = parts.monitor
    return app


@dataclass
class AppParts:
    """The resources and services of one app, each built once (build_parts); routes() and lifespan()
    take what they need from here."""

    settings: Settings
    database_url: str
    clock: Callable[[], datetime]
    standbys: Standbys | None
    repo: Repository
    feed: GenerationFeed | None
    resolver: dns.asyncresolver.Resolver
    store: RedisStore | None
    limiter: Limiter
    service: RegistryService
    owner: OwnershipService
    monitor: HealthMonitor
    third_party: ThirdPartyReader | None
    mcp: RegistryMCPServer
    redis_ping: _RedisPing | None

    async def check_standbys(self) -> None:
        assert self.standbys is not None
        try:
            position: int | None = await self.repo.wal_position()
        except RegistryError:
            position = None
        await self.standbys.check(position)

    async def refresh_gauges(self) -> None:
        """Registry-wide and health gauges, read when scraped (and every GAUGE_REFRESH_SECONDS, for
        the alerts on db_up and redis_up), so they are never stale by more than that."""
        stats = self.repo.pool.get_stats()
        DB_POOL_IN_USE.labels("primary").set(stats.get("pool_size", 0) - stats.get("pool_available", 0))
        DB_POOL_WAITING.labels("primary").set(stats.get("requests_waiting", 0))
        for member in self.standbys.members if self.standbys is not None else ():
            stats = member.pool.get_stats()
            in_use = stats.get("pool_size", 0) - stats.get("pool_available", 0)
            DB_POOL_IN_USE.labels(member.label).set(in_use)
            DB_POOL_WAITING.labels(member.label).set(stats.get("requests_waiting", 0))
        if self.redis_ping is not None:
            redis_up_gauge().set(1 if await self.redis_ping() else 0)
        try:
            TOTAL_REGISTERED_SERVERS.set(await self.service.listed_server_count())
            await self.monitor.refresh_gauges()
            if self.settings.upstream_registries:
                await refresh_sync_gauges(self.repo, self.settings.upstream_registries, self.clock())
            DB_UP.set(1)
        except RegistryError as exc:
            DB_UP.set(0)
            log.warning("metrics: database gauges not refreshed", error=exc.message)


def build_parts(settings: Settings, database_url: str, clock: Callable[[], datetime]) -> AppParts:
    pool = make_pool(
        database_url,
        settings.db_pool_size,
        timeout=settings.db_pool_timeout,
        statement_timeout=settings.db_statement_timeout,
    )
    standbys = (
        Standbys(
            settings.database_read_urls,
            lambda url: make_pool(
                url,
                settings.db_pool_size,
                timeout=settings.db_pool_timeout,
                statement_timeout=settings.db_statement_timeout,
                name="mcplookup-standby",
            ),
            settings.read_max_lag_seconds,
        )
        if settings.database_read_urls
        else None
    )
    repo = Repository(pool, standbys)
    feed = (
        GenerationFeed(database_url, settings.discover_generation_refresh_ms / 1000)
        if settings.discover_generation_refresh_ms > 0 and settings.discover_cache_seconds > 0
        else None
    )
    repo.feed = feed
    resolver = make_resolver(list(settings.dns_nameservers), settings.dns_timeout)
    store = (
        RedisStore(
            settings.redis_url,
            settings.redis_prefix,
            timeout=settings.redis_timeout,
            pool_size=settings.redis_pool_size,
        )
        if settings.redis_url
        else None
    )
    limiter = make_limiter(Budgets.from_settings(settings), store)
    service = RegistryService(repo, settings, resolver, limiter, clock=clock)
    if store is not None and service.discovery.answers.enabled:
        service.discovery.shared = SharedAnswers(
            store,
            settings.discover_cache_seconds,
            encode=lambda answer: answer.encoded(),
            decode=DiscoverResult.model_validate_json,
            count=lambda outcome: DISCOVER_SHARED_CACHE.labels(outcome).inc(),
            ttl_of=service.discovery.answer_ttl,
        )
    service.discovery.marks.store = store
    owner = OwnershipService(service)
    monitor = HealthMonitor(repo, settings, resolver, limiter, clock=clock)
    third_party = (
        ThirdPartyReader(repo, settings, resolver, clock=clock) if settings.third_party_text else None
    )
    monitor.marks = service.discovery.marks
    return AppParts(
        settings=settings,
        database_url=database_url,
        clock=clock,
        standbys=standbys,
        repo=repo,
        feed=feed,
        resolver=resolver,
        store=store,
        limiter=limiter,
        service=service,
        owner=owner,
        monitor=monitor,
        third_party=third_party,
        mcp=build_mcp(service, monitor, owner),
        redis_ping=_redis_pinger(settings.redis_url),
    )


def mcp_endpoint(settings: Settings, mcp: RegistryMCPServer) -> ASGIApp:
    """/mcp: the SDK's stateless JSON transport, the discover_servers fast path in front of it when on,
    and before both the HTTP rules and the body limit."""
    transport_security = TransportSecuritySettings(
        # "*" hands Host checking to the proxy in front (nginx, the Kubernetes ingress).
        enable_dns_rebinding_protection="*" not in settings.allowed_hosts,
        allowed_hosts=list(settings.allowed_hosts),
        allowed_origins=list(settings.allowed_origins),
    )
    mcp_app: ASGIApp = mcp.streamable_http_app(
        streamable_http_path="/mcp",
        stateless_http=True,
        json_response=True,
        transport_security=transport_security,
        # McpBodyLimit refuses larger bodies first, in JSON-RPC; the SDK's own check agrees with it.
        max_request_body_size=settings.max_body_bytes,
    )
    if settings.mcp_fast_path:
        mcp_app = DiscoverFastPath(mcp_app, mcp, transport_security)
    return McpBodyLimit(McpHttpGate(mcp_app, transport_security), settings.max_body_bytes)


def routes(parts: AppParts) -> list[Route]:
    settings, service, monitor, repo = parts.settings, parts.service, parts.monitor, parts.repo
    mcp_app = mcp_endpoint(settings, parts.mcp)
    openapi_doc = build_openapi(parts.mcp, settings.public_url if settings.public_url_given else None)

    async def health(_: Request) -> Response:
        search = service.discovery.semantic.describe().model_dump(exclude_none=True)
        return JSONResponse({"status": "ok", "version": __version__, "search": search})

    async def ready(_: Request) -> Response:
        try:
            async with repo.connection(wait=2.0) as conn:
                waiting = await pending_migrations(conn)
            await service.ready()
        except Exception as exc:  # readiness must answer, whatever failed
            log.warning("not ready", error=type(exc).__name__)
            return problem(503, "Not ready", "the database is unreachable or not migrated", "not-ready")
        if waiting:
            return problem(503, "Not ready", f"migrations not applied: {', '.join(waiting)}", "not-ready")
        return JSONResponse({"status": "ready"})

    async def metrics(_: Request) -> Response:
        await parts.refresh_gauges()
        return Response(exposition(), media_type=CONTENT_TYPE_LATEST)

    async def openapi(_: Request) -> Response:
        return JSONResponse(openapi_doc)

    route_list: list[Route] = [
        # First: the router tries routes in order, and MCP calls are most of the traffic.
        # A Route, not Mount("/"): unknown paths then get our 404 problem rather than the SDK's plain text.
        Route("/mcp", mcp_app, name="mcp"),
        Route("/health", health, methods=["GET"]),
        Route("/ready", ready, methods=["GET"]),
        Route("/api/v1/openapi.json", openapi, methods=["GET"]),
        *rest_routes(service, parts.owner),
        *health_routes(monitor),
        *registry_routes(RegistryListing(repo, service.discovery.marks)),
        # The pages for people (/, /servers/..., /register, /stats): after the API, whose paths are longer.
        *web_routes(service, monitor, settings),
    ]
    if settings.metrics_enabled and settings.metrics_port is None:
        route_list.insert(3, Route("/metrics", metrics, methods=["GET"]))
    return route_list


def lifespan(
    parts: AppParts, *, background: bool, metrics_port_shared: bool
) -> Callable[[Starlette], contextlib.AbstractAsyncContextManager[dict[str, Any]]]:
    settings, service, repo, feed = parts.settings, parts.service, parts.repo, parts.feed

    @contextlib.asynccontextmanager
    async def run(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        await repo.open()
        if feed is not None:
            feed.start()
        _warn_of_test_settings(settings)
        loops = await _start_loops(parts, background=background)
        metrics_server = None
        if settings.metrics_enabled and settings.metrics_port is not None:
            metrics_server = await serve_metrics(
                settings.host, settings.metrics_port, parts.refresh_gauges, shared=metrics_port_shared
            )
        runs_scheduler = background and settings.scheduler
        sync = (
            build_sync(repo, settings, parts.resolver, parts.clock)
            if runs_scheduler and settings.upstream_registries
            else None
        )
        scheduler = (
            Scheduler(parts.monitor, parts.database_url, third_party=parts.third_party, sync=sync)
            if runs_scheduler
            else None
        )
        if scheduler is not None:
            scheduler.start()
        # On every replica with the model: rows are claimed with SKIP LOCKED, so they share the work.
        semantic = service.discovery.semantic
        embeddings = EmbeddingWorker(semantic) if background and semantic.embedder is not None else None
        if embeddings is not None:
            embeddings.start()
        # What is loaded by now (the SDK's and pydantic's schemas, some 120k objects) lives as long as the
        # process. A full collection walked all of it, 65-95 ms with every request in flight stalled.
        gc.collect()
        gc.freeze()
        try:
            async with parts.mcp.session_manager.run():
                yield {"service": service}
        finally:
            gc.unfreeze()
            if metrics_server is not None:
                metrics_server.close()
            if scheduler is not None:
                await scheduler.stop()
            if sync is not None:
                await sync.client.aclose()
            if embeddings is not None:
                await embeddings.stop()
            semantic.close()
            for task in loops:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await service.discovery.answers.settle(cancel=True)
            await service.discovery.flush_events()
            if feed is not None:
                await feed.stop()
            await repo.close()
            await parts.limiter.close()
            if parts.redis_ping is not None:
                await parts.redis_ping.close()
            if parts.store is not None:
                await parts.store.close()

    return run


def _warn_of_test_settings(settings: Settings) -> None:
    if settings.mock_dns_verification:
        log.warning(
            "MCPLOOKUP_MOCK_DNS_VERIFICATION=true: every claim verifies without a DNS lookup; "
            "never use this outside staging, development and tests",
            env=settings.env,
        )
    if "*" in settings.trusted_proxies:
        log.warning(
            "MCPLOOKUP_TRUSTED_PROXIES=*: any peer is believed for one X-Forwarded-For hop; "
            "name the proxies in front instead"
        )


async def _start_loops(parts: AppParts, *, background: bool) -> list[asyncio.Task[None]]:
    """The loops of every replica: claim expiry and re-verification (with background), the analytics
    writer, the standby checks, the gauges; cancelled when the app stops."""
    service = parts.service
    loops = (
        [asyncio.create_task(sweep_claims(service)), asyncio.create_task(reverify_domains(parts.owner))]
        if background
        else []
    )
    loops.append(asyncio.create_task(service.discovery.events.run()))
    if parts.standbys is not None:
        await parts.check_standbys()
        loops.append(asyncio.create_task(every(STANDBY_CHECK_SECONDS, parts.check_standbys)))
    if parts.settings.metrics_enabled:
        loops.append(asyncio.create_task(every(GAUGE_REFRESH_SECONDS, parts.refresh_gauges)))
    return loops


async def _not_found(request: Request, exc: Exception) -> Response:
    return problem(404, "Not found", f"no route {request.url.path}; see /api/v1/openapi.json", "not-found")


async def _method_not_allowed(request: Request, exc: Exception) -> Response:
    # Starlette's own Allow names the methods of the first route that matched the path only; several
    # routes share some paths (GET, PATCH and DELETE /api/v1/servers/{name}).
    path = request.url.path
    allowed = sorted(
        {
            method
            for route in request.app.routes
            if isinstance(route, Route) and route.methods and route.path_regex.match(path)
            for method in route.methods
        }
    )
    return problem(
        405,
        "Method not allowed",
        f"{request.method} is not allowed on {path}; allowed: {', '.join(allowed)}",
        "method-not-allowed",
        headers={"Allow": ", ".join(allowed)},
    )


async def _registry_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RegistryError)
    return problem_from(exc)


async def _server_error(request: Request, exc: Exception) -> Response:
    log.error("unhandled error", path=request.url.path, error=type(exc).__name__)
    return problem(
        500, "Internal error", "something went wrong on our side; it has been logged", "internal-error"
    )


class _RedisPing:
    """Answers whether Redis answers a PING within a second (for redis_up)."""

    def __init__(self, url: str) -> None:
        import redis.asyncio

        self._client = redis.asyncio.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)

    async def __call__(self) -> bool:
        try:
            return bool(await self._client.ping())
        except Exception:  # any failure means "not answering"
            return False

    async def close(self) -> None:
        await self._client.aclose()


def _redis_pinger(url: str | None) -> _RedisPing | None:
    return _RedisPing(url) if url else None


def app_from_environment() -> Starlette:
    """The app of one worker process of `mcplookup serve --workers N`, built from the environment the
    parent prepared (DATABASE_URL names the embedded server when the parent started one). The parent
    holds METRICS_PORT for its workers, which listen on it together."""
    from mcplookup_mcp.core.logs import configure_logging
    from mcplookup_mcp.core.settings import load_settings

    settings = load_settings()
    configure_logging(settings.log_level, json_lines=settings.is_production)
    if not settings.database_url:
        raise RuntimeError("DATABASE_URL is unset in a worker process; start workers with mcplookup serve")
    return create_app(settings, settings.database_url, metrics_port_shared=True)
