"""The read pages: search (`/`), a server's page (`/servers/{name}`) and the registry's figures (`/stats`).

Each is one or two service calls, the same ones discover_servers, get_server, get_server_health,
browse_capabilities and get_discovery_stats make; no page needs JavaScript.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from mcplookup_mcp.core.errors import Conflict, InvalidInput, NotFound, RateLimited, RegistryError
from mcplookup_mcp.core.models import DiscoveredServer, HealthResult, HealthSpan
from mcplookup_mcp.core.next_steps import WEB
from mcplookup_mcp.core.vocab import REMOTE_TRANSPORTS, Transport
from mcplookup_mcp.services.monitor import HealthMonitor
from mcplookup_mcp.services.service import RegistryService
from mcplookup_mcp.transports.request_input import query_pairs
from mcplookup_mcp.transports.web.chart import timeline_chart, tone
from mcplookup_mcp.transports.web.csrf import FIELD as CSRF_FIELD
from mcplookup_mcp.transports.web.csrf import Csrf
from mcplookup_mcp.transports.web.forms import BadForm, CsrfRejected, checked_form, client_address
from mcplookup_mcp.transports.web.rendering import Templates
from mcplookup_mcp.transports.web.snippets import connection_snippets

PAGE_SIZE = 10
TRANSPORT_CHOICES = (
    ("", "any transport"),
    (Transport.STREAMABLE_HTTP, "Streamable HTTP"),
    (Transport.SSE, "SSE"),
    (Transport.STDIO, "stdio (runs locally)"),
)
SUGGESTED_CAPABILITIES = 60
SUGGESTIONS_SECONDS = 60.0
_FIELD_NAMES = {
    "name": "the name",
    "capabilities": "its capabilities",
    "description": "the description",
    "tools": "its tools, README or package",
    "packages": "its package or repository",
}
# How a word was found, when not as typed.
_HELD_AS = {
    "completed": "as the start of a longer word",
    "related": "through a related word or a spelling correction",
}
STRENGTH_LABELS = {
    "exact": (
        "exact match",
        "Every word of the question found as typed, one in the name, capabilities or tools",
    ),
    "partial": ("partial match", "The question's main words found, or most of it"),
    "weak": ("weak: a guess", "Only a few of the question's words found: probably not what you asked for"),
}


@dataclass(frozen=True)
class SearchForm:
    q: str
    verified: bool
    healthy: bool
    capability: str
    category: str
    transport: str
    cursor: str

    @classmethod
    def from_request(cls, request: Request) -> SearchForm:
        """The search's parameters (the first of each name); InvalidInput for one that is not UTF-8."""
        params: dict[str, str] = {}
        for key, value in query_pairs(request):
            params.setdefault(key, value)

        def checked(key: str) -> bool:
            return params.get(key, "") not in ("", "0", "false", "off")

        return cls(
            q=params.get("q", "").strip(),
            verified=checked("verified"),
            healthy=checked("healthy"),
            capability=params.get("capability", "").strip(),
            category=params.get("category", "").strip(),
            transport=params.get("transport", "").strip(),
            cursor=params.get("cursor", "").strip(),
        )

    def discover_arguments(self) -> dict[str, Any]:
        """The form as discover_servers arguments (the same names and rules)."""
        data: dict[str, Any] = {"limit": PAGE_SIZE}
        if self.q:
            data["query"] = self.q
        if self.verified:
            data["verified_only"] = True
        if self.healthy:
            data["healthy_only"] = True
        if self.capability:
            data["capabilities"] = [self.capability]
        if self.category:
            data["category"] = self.category
        if self.transport:
            data["transport"] = self.transport
        if self.cursor:
            data["cursor"] = self.cursor
        return data

    def url(self, cursor: str | None = None) -> str:
        pairs = [("q", self.q)] if self.q else []
        pairs += [("verified", "1")] if self.verified else []
        pairs += [("healthy", "1")] if self.healthy else []
        pairs += [("capability", self.capability)] if self.capability else []
        pairs += [("category", self.category)] if self.category else []
        pairs += [("transport", self.transport)] if self.transport else []
        pairs += [("cursor", cursor)] if cursor else []
        return "/?" + urlencode(pairs) if pairs else "/"

    @property
    def filtered(self) -> bool:
        return self.verified or self.healthy or bool(self.capability or self.category or self.transport)


def why_matched(server: DiscoveredServer, query: str) -> str | None:
    """The match explanation in the person's own words (never stems): each word of the question found,
    how if not as typed, and in which fields, in the order the question has them."""
    parts = []
    for word in _in_question_order(server.match.words, query):
        fields = [_FIELD_NAMES.get(f, f) for f, words in server.match.matched_words.items() if word in words]
        if not fields:
            continue
        how = _HELD_AS.get(server.match.words[word])
        listed = fields[0] if len(fields) == 1 else ", ".join(fields[:-1]) + " and " + fields[-1]
        parts.append(f"“{word}”{f' ({how})' if how else ''} in {listed}")
    return "; ".join(parts) if parts else None


def words_missing(server: DiscoveredServer, query: str) -> list[str]:
    """The question's words this server does not hold. A part of a hyphenated word ("e" of "e-mail") and
    the word itself are left out: the word's other parts may well have been found."""
    words = server.match.words
    return [
        w
        for w in _in_question_order(words, query)
        if words[w] == "missing" and not any(o != w and (o in w or w in o) for o in words)
    ]


def _in_question_order(words: Iterable[str], query: str) -> list[str]:
    typed = query.lower()

    def place(word: str) -> tuple[int, str]:
        at = typed.find(word)
        return (at if at >= 0 else len(typed), word)

    return sorted(words, key=place)


def safe_link(url: object) -> str | None:
    """An operator's URL as a link target only when it is plain http(s): never javascript: or data:."""
    if not isinstance(url, str) or len(url) > 2048:
        return None
    parts = urlsplit(url)
    return url if parts.scheme in ("http", "https") and parts.netloc else None


class Pages:
    def __init__(
        self,
        service: RegistryService,
        monitor: HealthMonitor,
        templates: Templates,
        csrf: Csrf,
        public_url: str,
    ) -> None:
        self.service = service
        self.monitor = monitor
        self.templates = templates
        self.csrf = csrf
        self.public_url = public_url
        self._suggested: list[str] = []
        self._suggested_at = -SUGGESTIONS_SECONDS

    def error(self, exc: RegistryError, title: str, status: int | None = None) -> Response:
        return self.templates.render(
            "error.html", {"title": title, "message": exc.message}, status=status or exc.status
        )

    async def search(self, request: Request) -> Response:
        try:
            form = SearchForm.from_request(request)
        except InvalidInput as exc:
            return self.error(exc, "The search was refused")
        error: str | None = None
        status = 200
        servers: list[DiscoveredServer] = []
        next_url: str | None = None
        unsure = False
        try:
            result = await self.service.discover(
                form.discover_arguments(), transport="web", client=client_address(request)
            )
            servers = result.servers
            next_url = form.url(result.next_cursor) if result.next_cursor else None
            unsure = bool(result.no_confident_match)
        except InvalidInput as exc:
            error, status = exc.message, exc.status
        shown = [
            (s, why_matched(s, form.q), words_missing(s, form.q), tone(s.health.status)) for s in servers
        ]
        return self.templates.render(
            "search.html",
            {
                "form": form,
                "error": error,
                # Ranked answers list exact, then partial, then weak ones: the weak ones are shown apart,
                # as guesses, and when nothing matched well they are all there is.
                "no_confident_match": unsure,
                "servers": [r for r in shown if r[0].match.strength != "weak"],
                "guesses": [r for r in shown if r[0].match.strength == "weak"],
                "strengths": STRENGTH_LABELS,
                "next_url": next_url,
                "first_url": form.url() if form.cursor else None,
                "transports": TRANSPORT_CHOICES,
                "suggestions": await self._suggestions(),
                "nav": "search",
            },
            status=status,
        )

    async def _suggestions(self) -> list[str]:
        """The capability filter's suggestions. Counting capabilities reads every listing, so each replica
        keeps the answer a minute rather than count again for every search page."""
        now = time.monotonic()
        if now - self._suggested_at > SUGGESTIONS_SECONDS:
            try:
                counts = await self.service.browse_capabilities({"limit": SUGGESTED_CAPABILITIES})
                self._suggested = [c.value for c in counts.capabilities]
                self._suggested_at = now
            except RegistryError:
                pass  # the suggestions are a convenience: the page works without them
        return self._suggested

    async def server(self, request: Request) -> Response:
        probed = request.query_params.get("probed") == "1"
        return await self._server_page(
            request, "Probed just now: the figures below include it." if probed else None
        )

    async def probe_now(self, request: Request) -> Response:
        """The "Probe now" button: a real probe (get_server_health with realtime), then the page again."""
        name = request.path_params["name"]
        try:
            await checked_form(request, self.csrf, self.service.settings.max_body_bytes)
        except (BadForm, CsrfRejected) as exc:
            return self.error(RegistryError(str(exc)), "The form was refused", status=403)
        try:
            await self.monitor.get_health(
                {"name": name, "realtime": True}, client=client_address(request), steps=WEB
            )
        except NotFound as exc:
            return self.error(exc, "No such server")
        except (RateLimited, Conflict, InvalidInput) as exc:
            wait = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else None
            return await self._server_page(request, exc.message, failed=True, status=exc.status, headers=wait)
        # Post/redirect/get: reloading the page does not probe again.
        return RedirectResponse(f"/servers/{quote(name, safe='/')}?probed=1", status_code=303)

    async def _server_page(
        self,
        request: Request,
        notice: str | None,
        *,
        failed: bool = False,
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> Response:
        name = request.path_params["name"]
        try:
            found = await self.service.get_server({"name": name}, steps=WEB)
        except (NotFound, InvalidInput):
            # Said for the page's reader, whatever the argument's fault was (the service's message names it).
            return self.error(
                NotFound(
                    f"No listed server is named {name}. A claim is listed only once its domain is "
                    "verified; search for the server instead."
                ),
                "No such server",
            )
        except RegistryError as exc:
            return self.error(exc, "This server cannot be shown")
        health: HealthResult | None
        spans: list[HealthSpan] = []
        try:
            health, spans = await self.monitor.get_health_with_timeline(
                {"name": found.server.name}, client="web", steps=WEB
            )
        except NotFound:
            health = None
        server = found.server
        token = self.csrf.token_for(request)
        response = self.templates.render(
            "server.html",
            {
                "notice": notice,
                "notice_failed": failed,
                "csrf_field": CSRF_FIELD,
                "csrf_token": token,
                "probe_allowed": bool(server.endpoint) and server.transport in REMOTE_TRANSPORTS,
                "found": found,
                "server": server,
                "health": health,
                "health_tone": tone(server.health.status),
                "chart": timeline_chart(spans),
                "snippets": connection_snippets(server, self.public_url),
                "website": safe_link(server.website_url),
                "repository": safe_link((server.repository or {}).get("url")),
                "nav": "",
            },
            status=status,
            headers=headers,
        )
        self.csrf.remember(response, token)
        return response

    async def stats(self, request: Request) -> Response:
        try:
            figures = await self.service.stats()
            capabilities = await self.service.browse_capabilities({"limit": 25})
        except RegistryError as exc:
            return self.error(exc, "The figures are not available")
        return self.templates.render(
            "stats.html", {"stats": figures, "capabilities": capabilities, "nav": "stats"}
        )
