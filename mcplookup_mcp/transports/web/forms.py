"""Reading the pages' form posts: an urlencoded body, capped, that has passed the CSRF check."""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request

from mcplookup_mcp.core.errors import BodyTooLarge
from mcplookup_mcp.transports.body_limit import read_body
from mcplookup_mcp.transports.web.csrf import Csrf, CsrfRejected

MAX_FIELDS = 50


class BadForm(Exception):
    """The post is not a form these pages send."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


async def read_form(request: Request, limit: int) -> dict[str, str]:
    """An urlencoded form body of at most `limit` bytes (MCPLOOKUP_MAX_BODY_BYTES, as for the API): one
    value per name (the first); anything else is refused."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise BadForm("send the form as application/x-www-form-urlencoded")
    try:
        body = await read_body(request, limit)
    except BodyTooLarge:
        raise BadForm(f"the form is larger than {limit} bytes, the most this service reads", 413) from None
    try:
        # errors="strict": percent-encoded bytes that are not UTF-8 (a surrogate's among them) are refused,
        # not kept as U+FFFD in what is stored.
        pairs = parse_qsl(
            body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FIELDS, errors="strict"
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadForm(f"the form could not be read: {exc}") from None
    form: dict[str, str] = {}
    for key, value in pairs:
        form.setdefault(key, value)
    return form


async def checked_form(request: Request, csrf: Csrf, limit: int) -> dict[str, str]:
    """The post's form once it has passed the CSRF check; raises BadForm or CsrfRejected."""
    form = await read_form(request, limit)
    csrf.check(request, form)
    return form


def client_address(request: Request) -> str:
    """The address the service's rate limits count (as the REST shim does)."""
    return request.client.host if request.client else "unknown"


__all__ = ["BadForm", "CsrfRejected", "checked_form", "client_address", "read_form"]
