"""The pages' routes, for app.py to put ahead of the MCP endpoint."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mcplookup_mcp.core.settings import Settings
from mcplookup_mcp.services.monitor import HealthMonitor
from mcplookup_mcp.services.service import RegistryService
from mcplookup_mcp.transports.web.csrf import Csrf
from mcplookup_mcp.transports.web.pages import Pages
from mcplookup_mcp.transports.web.register import Registration
from mcplookup_mcp.transports.web.rendering import Templates, load_static, static_response


def routes(service: RegistryService, monitor: HealthMonitor, settings: Settings) -> list[Route]:
    static = load_static()
    templates = Templates(static, settings.public_url)
    csrf = Csrf(settings.public_url)
    pages = Pages(service, monitor, templates, csrf, settings.public_url)
    registration = Registration(service, templates, csrf)

    async def static_file(request: Request) -> Response:
        return static_response(request, static)

    return [
        Route("/", pages.search, methods=["GET"], name="web_search"),
        Route("/servers/{name:path}", pages.server, methods=["GET"], name="web_server"),
        Route("/servers/{name:path}/probe", pages.probe_now, methods=["POST"], name="web_probe"),
        Route("/stats", pages.stats, methods=["GET"], name="web_stats"),
        Route("/register", registration.show_form, methods=["GET"], name="web_register_form"),
        Route("/register", registration.submit, methods=["POST"], name="web_register"),
        Route("/register/verify", registration.show_check, methods=["GET"], name="web_verify_form"),
        Route("/register/verify", registration.check, methods=["POST"], name="web_verify"),
        Route("/static/{file}", static_file, methods=["GET"], name="web_static"),
    ]
