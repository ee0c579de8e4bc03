"""Input rules shared by every transport. Every refusal has one form (`refuse`): the field, what was wrong,
what is allowed, and what to send instead."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import idna

from mcplookup_mcp.core.errors import InvalidInput
from mcplookup_mcp.core.vocab import REMOTE_TRANSPORTS

# What an owner may register: a remote endpoint the prober can reach.
TRANSPORTS: tuple[str, ...] = REMOTE_TRANSPORTS
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
# A lone surrogate ("\ud800" in JSON) is a Python string no UTF-8 encoder takes: PostgreSQL never could.
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_SERVER_NAME = re.compile(r"^[a-zA-Z0-9.-]+/[a-zA-Z0-9._-]+$")


def refuse(field: str, wrong: str, allowed: str, instead: str) -> InvalidInput:
    """The one form of every refused argument: what was wrong, what is allowed, what to send instead."""
    return InvalidInput(f"{field}: {wrong}; allowed: {allowed}; send {instead}", field=field)


def reject_unknown(data: Mapping[str, Any], allowed: Sequence[str], where: str = "request") -> None:
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise refuse(
            unknown[0],
            f"unknown field(s) in {where}: {', '.join(unknown)}",
            f"the fields {', '.join(allowed)}",
            "only those, or leave the unknown ones out",
        )


def domain(value: object, field: str = "domain") -> str:
    """A registrable host name: IDNA-normalised to lower-case ASCII, at least two labels, not an IP."""
    allowed = f"a domain name of at most {MAX_DOMAIN} characters, two labels or more"
    instead = "a bare domain such as example.com"
    if value is not None and not isinstance(value, str):
        raise refuse(field, f"got {type(value).__name__}, not a string", allowed, instead)
    if not value or not value.strip():
        raise refuse(field, "missing", allowed, instead)
    raw = value.strip().rstrip(".")
    if len(raw) > MAX_DOMAIN:
        raise refuse(field, f"{len(raw)} characters long", allowed, instead)
    if "://" in raw or "/" in raw or "@" in raw or ":" in raw.strip("[]"):
        raise refuse(
            field, f"{raw[:80]!r} has a scheme, port, path or user", allowed, instead + ", nothing around it"
        )
    try:
        ipaddress.ip_address(raw.strip("[]"))
    except ValueError:
        pass
    else:
        raise refuse(field, f"{raw!r} is an IP address", allowed, instead)
    try:
        ascii_name = idna.encode(raw, uts46=True).decode("ascii").lower()
    except idna.IDNAError as exc:
        raise refuse(field, f"{raw[:80]!r} is not a valid domain name ({exc})", allowed, instead) from None
    labels = ascii_name.split(".")
    if len(labels) < 2:
        raise refuse(field, f"{raw!r} has one label", allowed, instead)
    if len(ascii_name) > MAX_DOMAIN or not all(_LABEL.match(label) for label in labels):
        raise refuse(
            field,
            f"{raw[:80]!r} is not a valid domain name",
            allowed + " of letters, digits and hyphens, 1 to 63 characters each",
            instead,
        )
    if labels[-1].isdigit():
        raise refuse(field, f"{raw!r} has a numeric top-level label", allowed, instead)
    return ascii_name


def reversed_domain(name: str) -> str:
    return ".".join(reversed(name.split(".")))


def slug(value: object, field: str = "slug") -> str:
    if value is None or value == "":
        return "mcp"
    if not isinstance(value, str) or not _SLUG.match(value):
        raise refuse(
            field,
            f"{str(value)[:80]!r} is not a short name",
            "1 to 64 lower-case letters, digits, dots, hyphens or underscores, starting and ending with a "
            "letter or digit",
            "a short name such as 'mail', or leave it out for 'mcp'",
        )
    return value


def server_name(value: object, field: str = "name") -> str:
    allowed = "a registry name of at most 200 characters: reversed domain, a slash, then a short name"
    if not isinstance(value, str) or not value.strip():
        raise refuse(field, "missing", allowed, "a name such as com.example/mail")
    name = value.strip()
    if len(name) > 200 or not _SERVER_NAME.match(name):
        raise refuse(field, f"{name[:80]!r} is not a server name", allowed, "a name such as com.example/mail")
    return name


def unicode_text(text: str, field: str) -> None:
    """Refuses text holding a lone surrogate, naming the field: it is not Unicode and cannot be stored."""
    found = _SURROGATE.search(text)
    if found:
        raise refuse(
            field,
            f"holds a lone surrogate \\u{ord(found.group()):04x} at position {found.start()}, which is not a "
            "Unicode character",
            "Unicode text (a character beyond U+FFFF is written as a pair of surrogates, high then low)",
            "the same text without it",
        )


def _no_control(text: str, field: str, allowed: str) -> None:
    unicode_text(text, field)
    # Stored text is kept as given, so a control character is refused rather than cleaned away:
    # PostgreSQL text cannot hold NUL at all, and the rest have no place in a listing or a URL.
    found = _CONTROL.search(text)
    if found:
        raise refuse(
            field,
            f"holds the control character {found.group()!r} at position {found.start()}",
            allowed + ", without control characters (tab, newline and carriage return are allowed)",
            "the same without it",
        )


def text(value: object, field: str, limit: int, required: bool = False, stored: bool = False) -> str | None:
    """Text of at most `limit` characters. Stored text (a listing's fields) is kept as given, so a control
    character in it is refused; text that is only searched for loses them."""
    allowed = f"text of at most {limit} characters"
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise refuse(field, "missing", allowed, "some text")
        return None
    if not isinstance(value, str):
        raise refuse(field, f"got {type(value).__name__}, not a string", allowed, "a string")
    unicode_text(value, field)
    if stored:
        _no_control(value, field, allowed)
    cleaned = _CONTROL.sub("", value).strip()
    if len(cleaned) > limit:
        raise refuse(field, f"{len(cleaned)} characters long", allowed, f"at most {limit} characters")
    return cleaned


def endpoint(value: object, claimed_domain: str, allow_http: bool, field: str = "endpoint") -> str:
    """An https URL on the claimed domain or one of its subdomains."""
    allowed = (
        f"an https URL of at most {MAX_URL} characters on {claimed_domain} or one of its subdomains (the "
        "domain you prove you own), without user, password or #fragment"
    )
    instead = f"the MCP server's URL, such as https://mcp.{claimed_domain}/mcp"
    if value is not None and not isinstance(value, str):
        raise refuse(field, f"got {type(value).__name__}, not a string", allowed, instead)
    if not value or not value.strip():
        raise refuse(field, "missing", allowed, instead)
    url = value.strip()
    if len(url) > MAX_URL:
        raise refuse(field, f"{len(url)} characters long", allowed, instead)
    _no_control(url, field, allowed)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise refuse(field, f"not a valid URL ({exc})", allowed, instead) from None
    schemes = ("https", "http") if allow_http else ("https",)
    if parts.scheme not in schemes:
        raise refuse(field, f"{parts.scheme or 'no'} scheme", allowed, instead)
    if parts.username or parts.password:
        raise refuse(field, "holds a user name or password", allowed, instead)
    if parts.fragment:
        raise refuse(field, "holds a #fragment", allowed, instead)
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise refuse(field, "has no host name", allowed, instead)
    try:
        host = domain(host, field=field)
    except InvalidInput:
        raise refuse(field, f"host {host[:80]!r} is not a domain name", allowed, instead) from None
    if host != claimed_domain and not host.endswith("." + claimed_domain):
        raise refuse(field, f"host {host} is not under {claimed_domain}", allowed, instead)
    netloc = host if port is None else f"{host}:{port}"
    return parts._replace(netloc=netloc).geturl()


def web_url(value: object, field: str) -> str | None:
    if value is None or value == "":
        return None
    allowed = f"an http(s) URL of at most {MAX_URL} characters"
    instead = "a URL such as https://example.com/docs, or leave it out"
    if not isinstance(value, str) or len(value) > MAX_URL:
        raise refuse(
            field,
            "not a string" if not isinstance(value, str) else f"{len(value)} characters long",
            allowed,
            instead,
        )
    _no_control(value, field, allowed)
    parts = urlsplit(value.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise refuse(field, f"{value[:80]!r} is not an http(s) URL", allowed, instead)
    return value.strip()


def choice(value: object, field: str, choices: Sequence[str], default: str | None) -> str | None:
    if value is None or value == "":
        return default
    if not isinstance(value, str) or value not in choices:
        raise refuse(
            field,
            f"{str(value)[:80]!r} is not one of the choices",
            ", ".join(choices),
            "one of them" + (f", or leave it out for {default}" if default else ", or leave it out"),
        )
    return value


def capabilities(value: object, field: str = "capabilities") -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [part for part in value.split(",")]
    allowed = (
        f"a list of at most {MAX_CAPABILITIES} keywords, each at most {MAX_CAPABILITY} characters of letters, "
        "digits, spaces and . _ : / + -"
    )
    instead = "keywords such as ['email', 'calendar']"
    if not isinstance(value, list | tuple):
        raise refuse(field, f"got {type(value).__name__}, not a list", allowed, instead)
    if len(value) > MAX_CAPABILITIES:
        raise refuse(field, f"{len(value)} entries", allowed, f"at most {MAX_CAPABILITIES} of them")
    result: list[str] = []
    for item in value:
        if not isinstance(item, str):
            raise refuse(field, f"an entry is {type(item).__name__}, not a string", allowed, instead)
        cap = item.strip().lower()
        if not cap:
            continue
        if len(cap) > MAX_CAPABILITY or not _CAPABILITY.match(cap):
            raise refuse(field, f"entry {cap[:80]!r} is not a keyword", allowed, instead)
        if cap not in result:
            result.append(cap)
    return result


def category(value: object, field: str = "category") -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _CATEGORY.match(value.strip().lower()):
        raise refuse(
            field,
            f"{str(value)[:80]!r} is not a category",
            "one word of at most 63 letters, digits, spaces, - and _",
            "a word such as 'productivity' (browse_capabilities lists those in use), or leave it out",
        )
    return value.strip().lower()


def limit(value: object, default: int = 10, field: str = "limit") -> int:
    number = whole(value, field, 1, MAX_LIMIT, default)
    assert number is not None  # the default is a number
    return number


_WHOLE = re.compile(r"^\s*-?\d{1,20}\s*$")


def whole(
    value: object,
    field: str,
    minimum: int,
    maximum: int,
    default: int | None,
    example: int | None = None,
    absent: str | None = None,
) -> int | None:
    """A whole number from `minimum` to `maximum`: a JSON integer (or a float without a fraction), or its
    digits in a string (a query string's); `default` when left out, which `absent` says in words."""
    if value is None or value == "":
        return default
    number: object = value
    if isinstance(value, str):
        number = int(value) if _WHOLE.match(value) else None
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    if isinstance(number, bool) or not isinstance(number, int) or not minimum <= number <= maximum:
        suggested = example if example is not None else default
        raise refuse(
            field,
            f"{str(value)[:80]!r} is out of range",
            f"a whole number from {minimum} to {maximum}",
            f"a number such as {suggested}, or leave it out for {absent or default}",
        )
    return number


def flag(value: object, field: str, default: bool = False) -> bool:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "1", "yes"):
        return True
    if isinstance(value, str) and value.lower() in ("false", "0", "no"):
        return False
    raise refuse(
        field,
        f"{str(value)[:80]!r} is not a yes or no",
        "true or false",
        f"true or false, or leave it out for {str(default).lower()}",
    )


def name_or_domain(data: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """A server asked for by exactly one of its registry name or its domain, each checked."""
    name, domain_ = data.get("name"), data.get("domain")
    if bool(name) == bool(domain_):
        raise refuse(
            "name",
            "both name and domain given" if name else "neither name nor domain given",
            "exactly one of name or domain",
            "name (such as com.example/mail) or domain (such as example.com), not both",
        )
    return (server_name(name), None) if name else (None, domain(domain_))


def like_escape(value: str) -> str:
    """`value` matched literally by LIKE/ILIKE (the queries use the default escape character)."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
