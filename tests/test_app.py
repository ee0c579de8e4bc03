"""Operator-facing surface: /health, /ready, /metrics, the OpenAPI document, request ids."""

from __future__ import annotations

import os

import httpx
from conftest import LiveServer
from starlette.routing import Route

from mcplookup_mcp.app import create_app


async def test_health_and_ready(http: httpx.AsyncClient) -> None:
    assert (await http.get("/health")).json()["status"] == "ok"
    response = await http.get("/ready")
    assert response.status_code == 200 and response.json() == {"status": "ready"}


async def test_ready_fails_on_unmigrated_database(
    make_live: object, pg_admin_url: str, settings: object
) -> None:
    from conftest import LiveServer, create_database, drop_database

    url = create_database(pg_admin_url, f"mcpl_unmigrated_{os.getpid()}")
    try:
        live = LiveServer(create_app(settings, url)).start()  # type: ignore[arg-type]
        try:
            async with httpx.AsyncClient(base_url=live.base_url) as http:
                response = await http.get("/ready")
            assert response.status_code == 503
            assert response.headers["content-type"] == "application/problem+json"
        finally:
            live.stop()
    finally:
        drop_database(pg_admin_url, f"mcpl_unmigrated_{os.getpid()}")


# Served but not in the document: /mcp is JSON-RPC, described by the MCP specification and by its own
# tools/list; /metrics is Prometheus text for scrapers; the web pages and /static answer people with HTML.
UNDOCUMENTED = {"/mcp", "/metrics"}
WEB_ROUTES = ("web_",)


def _served(app_routes: list[object]) -> set[tuple[str, str]]:
    """Every (path template, method) the app routes, as OpenAPI writes them ({name:path} -> {name})."""
    return {
        (route.path.replace("{name:path}", "{name}"), method.lower())
        for route in app_routes
        if isinstance(route, Route)
        and route.path not in UNDOCUMENTED
        and not (route.name or "").startswith(WEB_ROUTES)
        for method in (route.methods or set()) - {"HEAD"}
    }


def _refs(node: object) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


async def test_openapi_describes_every_route(live: LiveServer, http: httpx.AsyncClient) -> None:
    doc = (await http.get("/api/v1/openapi.json")).json()
    app_routes = _served(live.app.routes)
    assert {("/v0.1/servers/{name}/versions/{version}", "get"), ("/health", "get"), ("/ready", "get")} <= (
        app_routes
    )
    documented = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    assert app_routes == documented
    assert doc["servers"] == [{"url": "/", "description": "the address this document was fetched from"}]
    for ops in doc["paths"].values():
        for op in ops.values():
            assert "200" in op["responses"] or "202" in op["responses"]
            for status, response in op["responses"].items():
                if status == "304":  # Not Modified has no body
                    assert "content" not in response
                    continue
                schema = next(iter(response["content"].values()))["schema"]
                if "$ref" in schema:
                    assert schema["$ref"].rsplit("/", 1)[-1] in doc["components"]["schemas"]
    refs = set(_refs(doc))
    assert refs and {ref.removeprefix("#/components/schemas/") for ref in refs} <= set(
        doc["components"]["schemas"]
    )
    register_body = doc["paths"]["/api/v1/register"]["post"]["requestBody"]["content"]["application/json"][
        "schema"
    ]
    assert register_body["additionalProperties"] is False
    assert {"domain", "endpoint", "slug", "capabilities"} <= set(register_body["properties"])
    # Routes that read a body say they refuse one over the limit.
    with_body = [op for ops in doc["paths"].values() for m, op in ops.items() if m in ("post", "patch")]
    assert len(with_body) == 5 and all("413" in op["responses"] for op in with_body)


def _sample(text: str, series: str) -> float:
    """The value of one series in a Prometheus exposition, 0 when absent (counters are process-wide,
    so tests compare before and after)."""
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_metrics_use_route_templates(http: httpx.AsyncClient) -> None:
    other_404 = 'http_requests_total{method="GET",path="other",status="404"}'
    before = _sample((await http.get("/metrics")).text, other_404)
    await http.get("/api/v1/servers/com.example/one")
    await http.get("/api/v1/servers/com.example/two")
    await http.post("/api/v1/verify", json={"domain": "example.test", "registration_id": "mcpreg_nope"})
    await http.get("/no/such/page-1")
    await http.get("/no/such/page-2")
    text = (await http.get("/metrics")).text
    assert (
        'http_request_duration_seconds_count{method="GET",path="/api/v1/servers/{name:path}",status="404"}'
        in text
    )
    assert "com.example/one" not in text
    assert _sample(text, other_404) == before + 2
    assert "page-1" not in text
    assert "verification_attempts_total" in text and "verification_failures_total" in text
    assert "total_registered_servers 0.0" in text


async def test_request_id_is_echoed_or_made(http: httpx.AsyncClient) -> None:
    response = await http.get("/health", headers={"x-request-id": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    response = await http.get("/health", headers={"x-request-id": "bad id;" + "x" * 80})
    assert (
        not response.headers["x-request-id"].startswith("bad") and len(response.headers["x-request-id"]) == 16
    )


async def test_mcp_refuses_unknown_host(live: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live.base_url) as http:
        response = await http.post(
            "/mcp",
            headers={"host": "evil.example", "accept": "application/json, text/event-stream"},
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        )
    assert response.status_code == 421
