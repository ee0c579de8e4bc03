"""CSRF protection for the register and verify forms: a double-submit token plus an Origin check.

The token is random, kept in a SameSite=Strict, HttpOnly cookie and repeated in a hidden form field; a
post is accepted only when the two are equal (compared in constant time). Nothing is stored on the
server, so any replica accepts any form. With an https public URL the cookie takes the `__Host-`
prefix, which a sibling subdomain cannot set, closing the cookie-injection hole of plain double submit.
A post whose Origin header names another site is refused before the token is looked at.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

FIELD = "csrf_token"
_TOKEN_BYTES = 32
_MAX_TOKEN = 100


class CsrfRejected(Exception):
    """The form post failed the CSRF check."""


class Csrf:
    def __init__(self, public_url: str) -> None:
        self.secure = urlsplit(public_url).scheme == "https"
        self.cookie = "__Host-mcpl_csrf" if self.secure else "mcpl_csrf"
        public = urlsplit(public_url)
        self._public_origin = f"{public.scheme}://{public.netloc}".lower()

    def token_for(self, request: Request) -> str:
        """The request's token, or a new one (set it on the answer with `remember`)."""
        given = request.cookies.get(self.cookie, "")
        if 20 <= len(given) <= _MAX_TOKEN and given.replace("-", "").replace("_", "").isalnum():
            return given
        return secrets.token_urlsafe(_TOKEN_BYTES)

    def remember(self, response: Response, token: str) -> None:
        response.set_cookie(
            self.cookie, token, path="/", httponly=True, samesite="strict", secure=self.secure
        )

    def check(self, request: Request, form: dict[str, str]) -> None:
        origin = request.headers.get("origin")
        if origin is not None and origin.lower() not in self._allowed_origins(request):
            raise CsrfRejected(f"the form was sent from another site ({origin[:100]})")
        cookie = request.cookies.get(self.cookie, "")
        sent = form.get(FIELD, "")
        if not cookie or not sent or len(sent) > _MAX_TOKEN:
            raise CsrfRejected("the form's security token is missing: reload the page and send it again")
        if not hmac.compare_digest(cookie.encode(), sent.encode()):
            raise CsrfRejected("the form's security token does not match: reload the page and send it again")

    def _allowed_origins(self, request: Request) -> set[str]:
        # The configured public origin, and the origin the request itself arrived at (a direct visit to
        # one replica, or a development server on another port).
        own = f"{request.url.scheme}://{request.url.netloc}".lower()
        return {self._public_origin, own}
