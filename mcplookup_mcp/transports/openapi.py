"""The OpenAPI document for the REST shim, built from the same models, declared arguments and tool schemas
the service uses."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from mcplookup_mcp import __version__
from mcplookup_mcp.core.arguments import Arguments
from mcplookup_mcp.core.discover_args import BROWSE_CAPABILITIES, DISCOVER
from mcplookup_mcp.core.models import (
    CapabilitiesResult,
    DeleteResult,
    DiscoverResult,
    DiscoveryStats,
    GetServerResult,
    HealthResult,
    KeyResult,
    Problem,
    RegisterResult,
    RevokeResult,
    UpdateResult,
    VerifyResult,
)
from mcplookup_mcp.transports.mcp_sdk import SdkServer

_PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


# OpenAPI links: how one answer's fields feed the next call (register -> verify -> get server), so clients
# and stateful test generators can follow the registration flow.
_REGISTER_LINKS = {
    "verify": {
        "operationId": "verify",
        "description": "Verify the claim once its TXT record is published",
        "requestBody": {
            "domain": "$response.body#/domain",
            "registration_id": "$response.body#/registration_id",
        },
    },
    "get_server": {
        "operationId": "get_server",
        "description": "The listing, found once the domain is verified",
        "parameters": {"path.name": "$response.body#/name"},
    },
}
_VERIFY_LINKS = {
    "get_server": {
        "operationId": "get_server",
        "description": "The listing, when verified",
        "parameters": {"path.name": "$response.body#/name"},
    }
}


_DISCOVER_CACHE_HEADERS = {
    "ETag": {"schema": {"type": "string"}, "description": "Strong validator of the answer's content"},
    "Cache-Control": {"schema": {"type": "string"}, "description": "How long shared caches may keep it"},
}
_UNAVAILABLE = {
    "description": (
        "The database is unavailable (type .../unavailable), or every database connection is in use "
        "(type .../busy): retry after Retry-After seconds (RFC 9457 problem)"
    ),
    "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait"}},
    "content": _PROBLEM,
}


def _ok(model: type[BaseModel], description: str) -> dict[str, Any]:
    return _ref_ok(model.__name__, description)


def _problems(*statuses: int) -> dict[str, Any]:
    return {str(s): {"description": "Problem (RFC 9457)", "content": _PROBLEM} for s in statuses}


def _param(
    name: str, where: str, schema: dict[str, Any], description: str, required: bool = False
) -> dict[str, Any]:
    return {"name": name, "in": where, "required": required, "schema": schema, "description": description}


def _tool_schema(mcp: SdkServer, tool: str) -> dict[str, Any]:
    schema = mcp.input_schema(tool)
    schema["additionalProperties"] = False
    return schema


def build_openapi(mcp: SdkServer, public_url: str | None = None) -> dict[str, Any]:
    """One definition of each input: discover's and browse_capabilities' parameters are their declared
    arguments (core/discover_args.py), request bodies the matching MCP tools' input schemas.

    `public_url` (MCPLOOKUP_PUBLIC_URL) is where clients reach the service, behind nginx or an ingress:
    the document's base for "Try it" clients and generated SDKs. Without it the base is "/", which a
    client resolves against the address it fetched the document from, rather than whatever address a
    replica listens on."""
    components = _model_components()
    paths: dict[str, Any] = {
        **_discovery_paths(),
        **_server_paths(),
        **_registration_paths(mcp),
        **_health_paths(),
    }
    _add_ownership_paths(paths, mcp)
    _add_registry_paths(paths, components)
    _add_operator_paths(paths, components)
    _add_shared_responses(paths)
    return {
        "openapi": "3.1.0",
        "servers": _servers(public_url),
        "info": {
            "title": "MCPLookup REST API",
            "version": __version__,
            "description": (
                "REST shim over the MCPLookup registry (/api/v1), the official MCP Registry read API "
                "(/v0.1, also answered at /v0 as the official registry does) and the operators' probes "
                "(/health, /ready). Not described here: the MCP endpoint "
                "/mcp (JSON-RPC; its tools list themselves through tools/list), /metrics (Prometheus text) "
                "and the web pages for people."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The domain's API key, mcpl_...",
                }
            },
        },
    }


_MODELS: tuple[type[BaseModel], ...] = (
    DiscoverResult,
    GetServerResult,
    HealthResult,
    RegisterResult,
    VerifyResult,
    UpdateResult,
    DeleteResult,
    KeyResult,
    RevokeResult,
    Problem,
    CapabilitiesResult,
    DiscoveryStats,
)


def _model_components() -> dict[str, Any]:
    """The answers' JSON schemas, each model and the models inside it under its own name."""
    components: dict[str, Any] = {}
    for model in _MODELS:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}", mode="serialization")
        components.update(schema.pop("$defs", {}))
        components[model.__name__] = schema
    return components


def declared_parameters(arguments: Arguments) -> list[dict[str, Any]]:
    """Declared arguments as query parameters, under the names the REST route documents."""
    parameters: list[dict[str, Any]] = []
    for arg in arguments.args:
        schema = arg.schema()
        description = schema.pop("description")
        parameters.append(_param(arg.query_name, "query", schema, description))
    return parameters


def _discovery_paths() -> dict[str, Any]:
    text = {"type": "string"}
    return {
        "/api/v1/discover": {
            "get": {
                "operationId": "discover",
                "summary": "Find MCP servers for a need, ranked",
                "description": (
                    "A list parameter (capability, exclude_capability) is repeated or comma-separated; "
                    "each parameter is also taken under its MCP argument's name (query, capabilities, "
                    "exclude_capabilities)."
                ),
                "parameters": [
                    *declared_parameters(DISCOVER),
                    _param(
                        "If-None-Match",
                        "header",
                        text,
                        "ETag(s) of an answer already held: an unchanged answer is a 304 without a body",
                    ),
                ],
                "responses": {
                    "200": _ok(DiscoverResult, "Ranked servers") | {"headers": _DISCOVER_CACHE_HEADERS},
                    "304": {
                        "description": "Not modified: If-None-Match named this answer's ETag (or *)",
                        "headers": _DISCOVER_CACHE_HEADERS,
                    },
                    **_problems(422, 429),
                },
            }
        },
        "/api/v1/capabilities": {
            "get": {
                "operationId": "browse_capabilities",
                "summary": "Capability and category counts over listed servers",
                "parameters": declared_parameters(BROWSE_CAPABILITIES),
                "responses": {"200": _ok(CapabilitiesResult, "Counts, most common first"), **_problems(422)},
            }
        },
        "/api/v1/stats": {
            "get": {
                "operationId": "get_discovery_stats",
                "summary": "Registry-wide figures",
                "responses": {"200": _ok(DiscoveryStats, "Figures"), **_problems(503)},
            }
        },
    }


def _server_paths() -> dict[str, Any]:
    text = {"type": "string"}
    return {
        "/api/v1/servers/{name}": {
            "get": {
                "operationId": "get_server",
                "summary": "One listed server by registry name (URL-encode the slash as %2F or leave it)",
                "parameters": [_param("name", "path", text, "e.g. com.example/mail", required=True)],
                "responses": {"200": _ok(GetServerResult, "The server"), **_problems(404, 422)},
            }
        },
        "/api/v1/domains/{domain}": {
            "get": {
                "operationId": "get_domain",
                "summary": "The listed server(s) of a domain",
                "parameters": [_param("domain", "path", text, "e.g. example.com", required=True)],
                "responses": {
                    "200": _ok(GetServerResult, "The domain's first server and the names of the others"),
                    **_problems(404, 422),
                },
            }
        },
    }


def _registration_paths(mcp: SdkServer) -> dict[str, Any]:
    return {
        "/api/v1/register": {
            "post": {
                "operationId": "register",
                "summary": "Claim a domain's server; returns the DNS record to publish",
                "security": [{}, {"bearer": []}],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _tool_schema(mcp, "register_server")}},
                },
                "responses": {
                    "202": _ok(RegisterResult, "Claim stored: publish the record, then verify")
                    | {"links": _REGISTER_LINKS},
                    "201": _ok(
                        RegisterResult, "Listed at once under an already verified domain (API key given)"
                    ),
                    **_problems(401, 403, 409, 422, 429),
                },
            }
        },
        "/api/v1/verify": {
            "post": {
                "operationId": "verify",
                "summary": "Check a claim's DNS record; on success returns the domain's API key once",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _tool_schema(mcp, "verify_domain")}},
                },
                "responses": {
                    "200": _ok(VerifyResult, "Verified, or what to publish or fix")
                    | {"links": _VERIFY_LINKS},
                    **_problems(404, 409, 410, 422, 429),
                },
            }
        },
    }


def _health_paths() -> dict[str, Any]:
    return {
        "/api/v1/health/{name}": {
            "get": {
                "operationId": "get_server_health",
                "summary": "A listed server's health: status, latency, uptime over 24 h and 7 d, recent probes",
                "parameters": [
                    _param(
                        "name",
                        "path",
                        {"type": "string"},
                        "A registry name (com.example/mail) or a domain (example.com)",
                        required=True,
                    ),
                    _param(
                        "realtime",
                        "query",
                        {"type": "boolean"},
                        "Probe now (one on-demand probe per server every 30 s)",
                    ),
                ],
                "responses": {
                    "200": _ok(HealthResult, "The server's health"),
                    **_problems(404, 409, 422, 429),
                },
            }
        },
    }


def _add_shared_responses(paths: dict[str, Any]) -> None:
    """Every route that reads a body refuses one over MCPLOOKUP_MAX_BODY_BYTES; every route that reads the
    database answers 503 with Retry-After while PostgreSQL is down (errors.Unavailable)."""
    for path, operations in paths.items():
        for method, operation in operations.items():
            if method in ("post", "patch"):
                operation["responses"].update(_problems(413))
            if path.startswith(("/api/v1/", "/v0.1/", "/v0/")) and path != "/api/v1/openapi.json":
                operation["responses"]["503"] = _UNAVAILABLE


def _servers(public_url: str | None) -> list[dict[str, str]]:
    if public_url:
        return [{"url": public_url, "description": "MCPLookup (MCPLOOKUP_PUBLIC_URL)"}]
    return [{"url": "/", "description": "the address this document was fetched from"}]


def _without(schema: dict[str, Any], field: str) -> dict[str, Any]:
    """A tool's input schema minus the argument the REST route takes from its path."""
    out = dict(schema)
    out["properties"] = {k: v for k, v in schema.get("properties", {}).items() if k != field}
    out["required"] = [r for r in schema.get("required", []) if r != field]
    return out


def _add_ownership_paths(paths: dict[str, Any], mcp: SdkServer) -> None:
    text = {"type": "string"}
    owner: list[dict[str, list[str]]] = [{"bearer": []}]
    refusals = _problems(401, 403, 404, 422)
    name = _param("name", "path", text, "e.g. com.example/mail", required=True)
    domain = _param("domain", "path", text, "e.g. example.com", required=True)
    paths["/api/v1/servers/{name}"]["patch"] = {
        "operationId": "update_server",
        "summary": "Change a listing's fields (owner only); fields left out stay as they are",
        "security": owner,
        "parameters": [name],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _without(_tool_schema(mcp, "update_server"), "name")}},
        },
        "responses": {"200": _ok(UpdateResult, "The updated listing"), **refusals},
    }
    paths["/api/v1/servers/{name}"]["delete"] = {
        "operationId": "delete_server",
        "summary": "Delete a listing (owner only): it leaves discovery, its row is kept marked deleted",
        "security": owner,
        "parameters": [name],
        "responses": {"200": _ok(DeleteResult, "Deleted"), **refusals},
    }
    paths["/api/v1/domains/{domain}/keys/rotate"] = {
        "post": {
            "operationId": "rotate_key",
            "summary": "Replace the domain's API key (owner only); the new key is shown once",
            "security": owner,
            "parameters": [domain],
            "requestBody": {
                "required": False,
                "content": {
                    "application/json": {"schema": _without(_tool_schema(mcp, "rotate_api_key"), "domain")}
                },
            },
            "responses": {"200": _ok(KeyResult, "The new key; the old one is revoked"), **refusals},
        }
    }
    paths["/api/v1/domains/{domain}/keys/revoke"] = {
        "post": {
            "operationId": "revoke_key",
            "summary": "Revoke the key sent (owner only); a new key comes from verifying the domain again",
            "security": owner,
            "parameters": [domain],
            "responses": {"200": _ok(RevokeResult, "Revoked"), **refusals},
        }
    }


_ENTRY_DESCRIPTION = (
    "A server.json document (the official registry's shape) and its _meta: "
    "io.modelcontextprotocol.registry/official {status, publishedAt, updatedAt, isLatest} and "
    "org.mcplookup/discovery {source, verified, remotesBlocked}"
)


def _add_registry_paths(paths: dict[str, Any], components: dict[str, Any]) -> None:
    """/v0.1: the official MCP Registry read API (registry_api.py), in the registry's own shapes."""
    text = {"type": "string"}
    components["RegistryEntry"] = {
        "type": "object",
        "description": _ENTRY_DESCRIPTION,
        "required": ["server", "_meta"],
        "properties": {
            "server": {"type": "object", "description": "server.json: name, description, version, ..."},
            "_meta": {"type": "object"},
        },
    }
    components["RegistryList"] = {
        "type": "object",
        "required": ["servers", "metadata"],
        "properties": {
            "servers": {"type": "array", "items": {"$ref": "#/components/schemas/RegistryEntry"}},
            "metadata": {
                "type": "object",
                "required": ["count"],
                "properties": {
                    "count": {"type": "integer"},
                    "nextCursor": {"type": "string", "description": "Pass as cursor for the next page"},
                },
            },
        },
    }
    name = _param("name", "path", text, "Registry name, URL-encoded: io.github.user%2Ftool", required=True)
    include_deleted = _param("include_deleted", "query", {"type": "boolean"}, "Also entries marked deleted")
    paths["/v0.1/servers"] = {
        "get": {
            "operationId": "registry_list",
            "summary": "Every listed server.json entry, by name and version, in keyset pages",
            "parameters": [
                _param("search", "query", text, "Only names containing this text"),
                _param("cursor", "query", text, "metadata.nextCursor of the previous page"),
                _param(
                    "limit",
                    "query",
                    {"type": "integer", "minimum": 1, "maximum": 100},
                    "1 to 100, default 30",
                ),
                _param(
                    "updated_since",
                    "query",
                    {"type": "string", "format": "date-time"},
                    "Only entries changed since (RFC 3339 with a zone); deleted ones always included, so "
                    "include_deleted=false with it is refused (400)",
                ),
                _param("version", "query", text, "Only this version, or latest"),
                include_deleted,
            ],
            "responses": {"200": _ref_ok("RegistryList", "A page of entries"), **_problems(400, 422)},
        }
    }
    paths["/v0.1/servers/{name}/versions"] = {
        "get": {
            "operationId": "registry_versions",
            "summary": "Every version of one server",
            "parameters": [name, include_deleted],
            "responses": {"200": _ref_ok("RegistryList", "The versions"), **_problems(404, 422)},
        }
    }
    paths["/v0.1/servers/{name}/versions/{version}"] = {
        "get": {
            "operationId": "registry_version",
            "summary": "One version of one server, or latest",
            "parameters": [
                name,
                _param("version", "path", text, "A version, or latest", required=True),
                include_deleted,
            ],
            "responses": {"200": _ref_ok("RegistryEntry", "The entry"), **_problems(404, 422)},
        }
    }
    # /v0: the same operations, answered in the same shape, as the official registry still does for older clients.
    for path in [p for p in paths if p.startswith("/v0.1/")]:
        operation = dict(paths[path]["get"])
        operation["operationId"] = f"{operation['operationId']}_v0"
        operation["summary"] = f"{operation['summary']} (as /v0.1; for older registry clients)"
        paths["/v0/" + path.removeprefix("/v0.1/")] = {"get": operation}


def _add_operator_paths(paths: dict[str, Any], components: dict[str, Any]) -> None:
    """Liveness, readiness and this document, as orchestrators and clients call them (app.py)."""
    components["Health"] = {
        "type": "object",
        "required": ["status", "version"],
        "properties": {"status": {"const": "ok"}, "version": {"type": "string"}},
    }
    components["Ready"] = {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"const": "ready"}},
    }
    paths["/health"] = {
        "get": {
            "operationId": "health",
            "summary": "Liveness: the process answers (no dependency is checked)",
            "responses": {"200": _ref_ok("Health", "Alive")},
        }
    }
    paths["/ready"] = {
        "get": {
            "operationId": "ready",
            "summary": "Readiness: the database answers and every migration is applied",
            "responses": {"200": _ref_ok("Ready", "Ready to serve"), **_problems(503)},
        }
    }
    paths["/api/v1/openapi.json"] = {
        "get": {
            "operationId": "openapi",
            "summary": "This document",
            "responses": {
                "200": {
                    "description": "The OpenAPI 3.1 document",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                }
            },
        }
    }


def _ref_ok(schema: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }
