"""Input rules shared by every transport. Each failure names the field and says what to send instead."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import idna

from mcplookup_mcp.errors import InvalidInput

TRANSPORTS = ("streamable-http", "sse")
AUTH_TYPES = ("none", "api_key", "oauth2", "bearer", "basic", "custom")

MAX_DOMAIN = 253
MAX_URL = 2048
MAX_DESCRIPTION = 2000
MAX_TITLE = 200
MAX_QUERY = 500
MAX_CAPABILITIES = 32
MAX_CAPABILITY = 64
MAX_LIMIT = 100

_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_CAPABILITY = re.compile(r"^[a-z0-9][a-z0-9 ._:/+-]*$")
_CATEGORY = re.compile(r"^[a-z0-9][a-z0-9 _-]{0,62}$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SERVER_NAME = re.compile(r"^[a-zA-Z0-9.-]+/[a-zA-Z0-9._-]+$")


def reject_unknown(data: Mapping[str, Any], allowed: Sequence[str], where: str = "request") -> None:
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise InvalidInput(
            f"unknown field(s) in {where}: {', '.join(unknown)}; accepted fields: {', '.join(allowed)}",
            field=unknown[0],
        )


def domain(value: object, field: str = "domain") -> str:
    """A registrable host name: IDNA-normalised to lower-case ASCII, at least two labels, not an IP."""
    if value is not None and not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string: a domain name such as example.com", field=field)
    if not value or not value.strip():
        raise InvalidInput(f"{field} is required: a domain name such as example.com", field=field)
    raw = value.strip().rstrip(".")
    if len(raw) > MAX_DOMAIN:
        raise InvalidInput(f"{field} is longer than {MAX_DOMAIN} characters", field=field)
    if "://" in raw or "/" in raw or "@" in raw or ":" in raw.strip("[]"):
        raise InvalidInput(
            f"{field} must be a bare domain name such as example.com, without scheme, port or path",
            field=field,
        )
    try:
        ipaddress.ip_address(raw.strip("[]"))
    except ValueError:
        pass
    else:
        raise InvalidInput(f"{field} must be a domain name, not an IP address", field=field)
    try:
        ascii_name = idna.encode(raw, uts46=True).decode("ascii").lower()
    except idna.IDNAError as exc:
        raise InvalidInput(f"{field} {raw!r} is not a valid domain name: {exc}", field=field) from None
    labels = ascii_name.split(".")
    if len(labels) < 2:
        raise InvalidInput(f"{field} needs at least two labels, such as example.com", field=field)
    if len(ascii_name) > MAX_DOMAIN or not all(_LABEL.match(label) for label in labels):
        raise InvalidInput(
            f"{field} {raw!r} is not a valid domain name: labels are letters, digits and hyphens, "
            "1 to 63 characters each",
            field=field,
        )
    if labels[-1].isdigit():
        raise InvalidInput(f"{field} {raw!r} has a numeric top-level label", field=field)
    return ascii_name


def reversed_domain(name: str) -> str:
    return ".".join(reversed(name.split(".")))


def slug(value: object, field: str = "slug") -> str:
    if value is None or value == "":
        return "mcp"
    if not isinstance(value, str) or not _SLUG.match(value):
        raise InvalidInput(
            f"{field} must be 1 to 64 lower-case letters, digits, dots, hyphens or underscores, "
            "starting and ending with a letter or digit (for example 'mail')",
            field=field,
        )
    return value


def server_name(value: object, field: str = "name") -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{field} is required: a server name such as com.example/mail", field=field)
    name = value.strip()
    if len(name) > 200 or not _SERVER_NAME.match(name):
        raise InvalidInput(
            f"{field} {name[:80]!r} is not a server name: it looks like 'com.example/mail' "
            "(reversed domain, a slash, then a short name)",
            field=field,
        )
    return name


def _no_control(url: str, field: str) -> None:
    # A URL is stored as given, so a control character is refused rather than cleaned away: PostgreSQL
    # text cannot hold NUL at all, and the rest have no place in a URL a client will fetch.
    found = _CONTROL.search(url)
    if found:
        raise InvalidInput(
            f"{field} must not contain control characters (found {found.group()!r} at position "
            f"{found.start()})",
            field=field,
        )


def text(value: object, field: str, limit: int, required: bool = False) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise InvalidInput(f"{field} is required", field=field)
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string", field=field)
    cleaned = _CONTROL.sub("", value).strip()
    if len(cleaned) > limit:
        raise InvalidInput(f"{field} is {len(cleaned)} characters long; the limit is {limit}", field=field)
    return cleaned


def endpoint(value: object, claimed_domain: str, allow_http: bool, field: str = "endpoint") -> str:
    """An https URL on the claimed domain or one of its subdomains."""
    if value is not None and not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string: an https URL on {claimed_domain}", field=field)
    if not value or not value.strip():
        raise InvalidInput(
            f"{field} is required: the https URL of the MCP server, on {claimed_domain} or a subdomain",
            field=field,
        )
    url = value.strip()
    if len(url) > MAX_URL:
        raise InvalidInput(f"{field} is longer than {MAX_URL} characters", field=field)
    _no_control(url, field)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidInput(f"{field} is not a valid URL: {exc}", field=field) from None
    schemes = ("https", "http") if allow_http else ("https",)
    if parts.scheme not in schemes:
        raise InvalidInput(
            f"{field} must start with https:// (got {parts.scheme or 'no'} scheme)", field=field
        )
    if parts.username or parts.password:
        raise InvalidInput(f"{field} must not contain a user name or password", field=field)
    if parts.fragment:
        raise InvalidInput(f"{field} must not contain a #fragment", field=field)
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise InvalidInput(f"{field} has no host name", field=field)
    try:
        host = domain(host, field=field)
    except InvalidInput:
        raise InvalidInput(
            f"{field} host {host!r} must be a domain name on {claimed_domain}, not an IP address", field=field
        ) from None
    if host != claimed_domain and not host.endswith("." + claimed_domain):
        raise InvalidInput(
            f"{field} host {host} is not {claimed_domain} or one of its subdomains: "
            "the endpoint must live under the domain you prove you own",
            field=field,
        )
    netloc = host if port is None else f"{host}:{port}"
    return parts._replace(netloc=netloc).geturl()


def web_url(value: object, field: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > MAX_URL:
        raise InvalidInput(f"{field} must be an https URL of at most {MAX_URL} characters", field=field)
    _no_control(value, field)
    parts = urlsplit(value.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise InvalidInput(f"{field} must be an http(s) URL such as https://example.com/docs", field=field)
    return value.strip()


def choice(value: object, field: str, choices: Sequence[str], default: str | None) -> str | None:
    if value is None or value == "":
        return default
    if not isinstance(value, str) or value not in choices:
        raise InvalidInput(f"{field} must be one of: {', '.join(choices)}", field=field)
    return value


def capabilities(value: object, field: str = "capabilities") -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [part for part in value.split(",")]
    if not isinstance(value, list | tuple):
        raise InvalidInput(
            f"{field} must be a list of short keywords such as ['email', 'calendar']", field=field
        )
    if len(value) > MAX_CAPABILITIES:
        raise InvalidInput(f"{field} has {len(value)} entries; the limit is {MAX_CAPABILITIES}", field=field)
    result: list[str] = []
    for item in value:
        if not isinstance(item, str):
            raise InvalidInput(f"{field} entries must be strings", field=field)
        cap = item.strip().lower()
        if not cap:
            continue
        if len(cap) > MAX_CAPABILITY or not _CAPABILITY.match(cap):
            raise InvalidInput(
                f"{field} entry {cap[:80]!r} must be at most {MAX_CAPABILITY} characters of letters, digits, "
                "spaces and . _ : / + -",
                field=field,
            )
        if cap not in result:
            result.append(cap)
    return result


def category(value: object, field: str = "category") -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _CATEGORY.match(value.strip().lower()):
        raise InvalidInput(
            f"{field} must be a short lower-case word such as 'productivity' (letters, digits, - and _)",
            field=field,
        )
    return value.strip().lower()


def limit(value: object, default: int = 10, field: str = "limit") -> int:
    if value is None or value == "":
        return default
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_LIMIT:
        raise InvalidInput(f"{field} must be a whole number from 1 to {MAX_LIMIT}", field=field)
    return value


def flag(value: object, field: str, default: bool = False) -> bool:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "1", "yes"):
        return True
    if isinstance(value, str) and value.lower() in ("false", "0", "no"):
        return False
    raise InvalidInput(f"{field} must be true or false", field=field)


def name_or_domain(data: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """A server asked for by exactly one of its registry name or its domain, each checked."""
    name, domain_ = data.get("name"), data.get("domain")
    if bool(name) == bool(domain_):
        raise InvalidInput("give exactly one of name (e.g. com.example/mail) or domain (e.g. example.com)")
    return (server_name(name), None) if name else (None, domain(domain_))


def like_escape(value: str) -> str:
    """`value` matched literally by LIKE/ILIKE (the queries use the default escape character)."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
