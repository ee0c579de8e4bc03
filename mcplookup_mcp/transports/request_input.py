"""What HTTP requests carry, decoded strictly: JSON bodies and query strings.

A JSON body nested without end made the standard parser raise RecursionError (a 500, and uvicorn
closed the connection); a lone surrogate (`"\\ud800"`) parses as a Python string that no UTF-8 encoder
takes, so it failed only when PostgreSQL read it. Both are refused here, before any service sees the
value, as an InvalidInput naming where it is. Query strings are decoded as UTF-8 strictly: Starlette
replaces invalid bytes with U+FFFD, which would be searched for, or stored, as if the client had meant it.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote_to_bytes

from starlette.requests import Request

from mcplookup_mcp.core import validation
from mcplookup_mcp.core.errors import InvalidInput

# Deeper than any request of this API (a listing is an object of strings and lists of strings); far
# below the depth at which the parser itself gives up.
MAX_JSON_DEPTH = 32


def json_value(raw: bytes) -> Any:
    """The JSON value of a request body, or InvalidInput: not JSON, nested too deeply, or text that is
    not Unicode (a lone surrogate)."""
    try:
        value = json.loads(raw)
    except RecursionError:
        raise _too_deep("") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"the body is not valid JSON: {exc}") from None
    _check(value, "", 0)
    return value


def _check(value: Any, path: str, depth: int) -> None:
    """Walks the value; a refusal's field is the top-level member it is under ("body" for the body)."""
    if isinstance(value, str):
        validation.unicode_text(value, _top(path))
    elif isinstance(value, dict | list):
        if depth >= MAX_JSON_DEPTH:
            raise _too_deep(path)
        if isinstance(value, dict):
            for key, item in value.items():
                validation.unicode_text(key, f"{path}: a member's name" if path else "a field name")
                _check(item, f"{path}.{key}" if path else key, depth + 1)
        else:
            for index, item in enumerate(value):
                _check(item, f"{path}[{index}]", depth + 1)


def _top(path: str) -> str:
    return path.split(".")[0].split("[")[0] or "body"


def _too_deep(path: str) -> InvalidInput:
    where = f" (at {path[:80]}{'...' if len(path) > 80 else ''})" if path else ""
    return validation.refuse(
        _top(path),
        f"arrays or objects nested more than {MAX_JSON_DEPTH} levels deep{where}",
        "a JSON object whose fields are strings, numbers, booleans or lists of strings",
        "the fields the route documents (see /api/v1/openapi.json)",
    )


def query_pairs(request: Request) -> list[tuple[str, str]]:
    """The query string's name=value pairs in order, each decoded as UTF-8 or refused naming it."""
    pairs: list[tuple[str, str]] = []
    raw: bytes = request.scope.get("query_string", b"")
    for part in raw.split(b"&"):
        if not part:
            continue
        name, _, value = part.partition(b"=")
        key = _decoded(name, None)
        pairs.append((key, _decoded(value, key)))
    return pairs


def _decoded(raw: bytes, name: str | None) -> str:
    data = unquote_to_bytes(raw.replace(b"+", b" "))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        field = name or data.decode("utf-8", "replace")[:80]
        what = f"the value of query parameter {name!r}" if name else "a query parameter's name"
        raise validation.refuse(
            field,
            f"{what} is not UTF-8 (byte 0x{data[exc.start]:02x} at position {exc.start})",
            "text encoded as UTF-8, then percent-encoded",
            "the same text encoded as UTF-8",
        ) from None
