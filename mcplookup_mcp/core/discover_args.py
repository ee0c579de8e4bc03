"""The arguments of discover_servers (MCP), GET /api/v1/discover (REST) and the web search, declared once
(see arguments.py): the tool's input schema, the REST parameters, the OpenAPI document and the service's
checks all come from here."""

from __future__ import annotations

from mcplookup_mcp.core import validation
from mcplookup_mcp.core.arguments import Arg, Arguments
from mcplookup_mcp.core.vocab import Transport

SORTS = ("relevance", "trust", "latency", "newest", "name")
# Remote transports, and stdio for servers installed as packages.
TRANSPORTS = tuple(t.value for t in Transport)
CAPABILITY_MATCH = ("all", "any")
# A cursor is a signed page key of some tens of characters: anything longer was never one.
MAX_CURSOR = 1000

DISCOVER = Arguments(
    (
        Arg(
            "query",
            "text",
            "What you need, e.g. 'manage my google calendar events'",
            default="",
            max_length=validation.MAX_QUERY,
            rest_name="q",
        ),
        Arg(
            "domain",
            "domain",
            "Only servers on this domain or its subdomains",
            max_length=validation.MAX_DOMAIN,
        ),
        Arg(
            "capabilities",
            "keywords",
            "Only servers declaring these capabilities (all of them, or see capability_match)",
            rest_name="capability",
        ),
        Arg(
            "capability_match",
            "choice",
            "'all' (default) or 'any' of the given capabilities",
            default="all",
            choices=CAPABILITY_MATCH,
        ),
        Arg(
            "exclude_capabilities",
            "keywords",
            "Leave out servers declaring any of these",
            rest_name="exclude_capability",
        ),
        Arg("category", "category", "Only servers in this category", max_length=63),
        Arg(
            "transport",
            "choice",
            "streamable-http, sse, or stdio (installable packages)",
            choices=TRANSPORTS,
        ),
        Arg(
            "auth_type",
            "choice",
            "none, api_key, oauth2, bearer, basic or custom",
            choices=validation.AUTH_TYPES,
        ),
        Arg("verified_only", "flag", "Only servers whose domain is DNS-verified", default=False),
        Arg("healthy_only", "flag", "Only servers whose last probe was healthy", default=False),
        Arg(
            "min_trust_score",
            "whole",
            "Only servers with at least this trust score",
            minimum=0,
            maximum=100,
            example=50,
            absent="no minimum",
        ),
        Arg(
            "sort",
            "choice",
            "relevance (default), trust, latency, newest or name",
            default="relevance",
            choices=SORTS,
        ),
        Arg(
            "limit",
            "whole",
            "How many results, 1 to 100",
            default=10,
            minimum=1,
            maximum=validation.MAX_LIMIT,
        ),
        Arg(
            "cursor",
            "token",
            "next_cursor from the previous page, same query and filters",
            max_length=MAX_CURSOR,
        ),
        Arg(
            "include_pending",
            "flag",
            "Also show unverified claims, flagged pending (not yet trusted)",
            default=False,
        ),
    )
)

BROWSE_CAPABILITIES = Arguments(
    (
        Arg(
            "limit",
            "whole",
            "How many of each, 1 to 100",
            default=100,
            minimum=1,
            maximum=validation.MAX_LIMIT,
        ),
    )
)
