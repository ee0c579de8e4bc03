"""Templates and the headers every page carries (CSP and friends); the static files the pages load."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

# No inline script or style anywhere: scripts and styles come from /static only, so text injected into a
# page cannot run even if escaping were ever missed. SVG charts use classes from the stylesheet.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    # same-origin, not no-referrer: browsers then still send our Origin on same-site form posts, which
    # the CSRF check compares; operators' sites linked from the pages learn nothing of our URLs.
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}
# Pages holding a claim's registration id or an API key: never kept by the browser or a proxy.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}

_STATIC_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}


@dataclass(frozen=True)
class StaticFile:
    body: bytes
    media_type: str
    etag: str


def load_static() -> dict[str, StaticFile]:
    """The package's static files, read once: they are small and never change while the process runs."""
    files: dict[str, StaticFile] = {}
    for entry in resources.files("mcplookup_mcp.transports.web").joinpath("static").iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1]
        if entry.is_file() and suffix in _STATIC_TYPES:
            body = entry.read_bytes()
            files[entry.name] = StaticFile(body, _STATIC_TYPES[suffix], hashlib.sha256(body).hexdigest()[:16])
    return files


def static_response(request: Request, files: dict[str, StaticFile]) -> Response:
    found = files.get(request.path_params["file"])
    if found is None:
        return HTMLResponse("not found", status_code=404, headers=SECURITY_HEADERS)
    headers = {
        **SECURITY_HEADERS,
        "ETag": f'"{found.etag}"',
        # URLs carry the file's hash (?v=...), so a changed file is a new URL.
        "Cache-Control": "public, max-age=86400",
    }
    if request.headers.get("if-none-match") == headers["ETag"]:
        return Response(status_code=304, headers=headers)
    return Response(found.body, media_type=found.media_type, headers=headers)


class Templates:
    def __init__(self, static: dict[str, StaticFile], public_url: str) -> None:
        self.env = Environment(
            loader=PackageLoader("mcplookup_mcp.transports.web", "templates"),
            # Every value is escaped unless a template says otherwise (none does).
            autoescape=select_autoescape(default=True, default_for_string=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.globals["static"] = lambda name: f"/static/{name}?v={static[name].etag}"
        self.env.globals["public_url"] = public_url
        self.env.filters["path"] = lambda value: quote(str(value), safe="/")

    def render(
        self,
        template: str,
        context: dict[str, Any],
        *,
        status: int = 200,
        no_store: bool = False,
        headers: dict[str, str] | None = None,
    ) -> HTMLResponse:
        body = self.env.get_template(template).render(**{"nav": "", **context})
        all_headers = {**SECURITY_HEADERS, **(NO_STORE if no_store else {}), **(headers or {})}
        return HTMLResponse(body, status_code=status, headers=all_headers)
