"""Every /v0.1 (and /v0) answer checked against the official registry's documents: the server.json schema
vendored in the package and the OpenAPI excerpt in tests/data. A client built here fails the request
that carried a non-conforming answer, so every test that uses it checks every answer it reads."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import yaml

DATA = Path(__file__).parent / "data"
OPENAPI = yaml.safe_load((DATA / "registry-openapi.yaml").read_text(encoding="utf-8"))
SERVER_SCHEMA = json.loads(
    resources.files("mcplookup_mcp.services").joinpath("schemas/server.schema.json").read_text("utf-8")
)
_SERVER = jsonschema.Draft7Validator(SERVER_SCHEMA)


def _openapi(component: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(
        {"$ref": f"#/components/schemas/{component}", "components": OPENAPI["components"]}
    )


_LIST = _openapi("ServerList")
_ONE = _openapi("ServerResponse")
checked: list[str] = []


def check_answer(path: str, status: int, body: Any) -> None:
    """Raise when an answer of the official read API departs from the official documents."""
    if status == 404:
        assert body["error"] == "Server not found", body
        return
    if status != 200:
        return
    listing = path.rstrip("/").endswith(("/servers", "/versions"))
    (_LIST if listing else _ONE).validate(body)
    items = body["servers"] if listing else [body]
    for item in items:
        _SERVER.validate(item["server"])
    checked.append(path)


async def _hook(response: httpx.Response) -> None:
    path = response.request.url.path
    if path.startswith(("/v0.1/", "/v0/")):
        await response.aread()
        check_answer(path, response.status_code, response.json())


def registry_client(base_url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base_url, event_hooks={"response": [_hook]}, timeout=30)
