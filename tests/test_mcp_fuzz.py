"""Every MCP tool, listed through the SDK's client, called with generated arguments through the real endpoint:
each call ends in a result or an isError result, never a transport error, a JSON-RPC error or a 5xx."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import httpx
import hypothesis
import pytest
from conftest import BOTH_MCP_PATHS, LiveServer, mcp_client
from dnsserver import ThreadedDnsServer
from hypothesis import HealthCheck, Phase, given
from hypothesis import strategies as st
from mcp_wire_support import MODERN, call
from registration_support import verified_listing

T = TypeVar("T")
EXAMPLES = 15

HOSTILE_TEXT = st.sampled_from(
    [
        "",
        "'; DROP TABLE mcp_servers; --",
        "\x00",
        "nul\x00inside",
        "ехаmple.test",  # Cyrillic е, х, а
        "xn--80ak6aa92e.test",
        "x" * 10_000,
        "\u202eevil\u202c",
        "%00%27",
        "../../etc/passwd",
        "🙂" * 50,
        "mcpreg_" + "a" * 40,
        "mcpl_" + "a" * 40,
        "example.test",
        "test.example/mail",
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=40),
    HOSTILE_TEXT,
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def _value_for(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Mostly a value of the declared type (hostile where it is text), sometimes anything at all."""
    kinds = {schema.get("type")} | {option.get("type") for option in schema.get("anyOf", [])}
    typed: list[st.SearchStrategy[Any]] = []
    if "string" in kinds:
        typed += [HOSTILE_TEXT, st.text(max_size=60)]
    if "integer" in kinds:
        typed.append(st.integers(min_value=-(2**40), max_value=2**40))
    if "boolean" in kinds:
        typed.append(st.booleans())
    if "array" in kinds:
        typed.append(st.lists(st.one_of(HOSTILE_TEXT, st.text(max_size=20)), max_size=40))
    return st.one_of(*typed, VALUES) if typed else VALUES


def arguments_for(
    input_schema: dict[str, Any], real: dict[str, Any] | None = None
) -> st.SearchStrategy[dict[str, Any]]:
    """Arguments for a tool; an argument named in `real` is mostly that value (a listing that exists)."""
    properties: dict[str, Any] = input_schema.get("properties", {})
    required = set(input_schema.get("required", []))
    real = real or {}

    def value(name: str, schema: dict[str, Any]) -> st.SearchStrategy[Any]:
        if name in real:
            return st.one_of(st.just(real[name]), st.just(real[name]), _value_for(schema))
        return _value_for(schema)

    known = st.fixed_dictionaries(
        {name: value(name, s) for name, s in properties.items() if name in required or name in real},
        optional={
            name: value(name, s)
            for name, s in properties.items()
            if name not in required and name not in real
        },
    )
    unknown = st.dictionaries(st.text(min_size=1, max_size=12), VALUES, max_size=2)
    return st.one_of(known, st.builds(lambda a, b: b | a, known, unknown), unknown)


class ClientThread:
    """One SDK client session, held open on an event loop of its own for the sync hypothesis test.

    The session is entered and left in one task (anyio's cancel scopes require it); calls come from others.
    """

    def __init__(self, base_url: str, api_key: str | None = None) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.client: Any = None
        self._opened = threading.Event()
        self._closing = asyncio.Event()
        self._session = asyncio.run_coroutine_threadsafe(self._hold(base_url, api_key), self.loop)
        if not self._opened.wait(20):
            raise RuntimeError(f"no MCP session: {self._session}")

    async def _hold(self, base_url: str, api_key: str | None) -> None:
        async with mcp_client(base_url, api_key) as client:
            self.client = client
            self._opened.set()
            await self._closing.wait()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self._closing.set)
        self._session.result(20)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def client(live: LiveServer) -> Iterator[ClientThread]:
    held = ClientThread(live.base_url)
    yield held
    held.close()


def _fuzz_tool(
    client: ClientThread,
    name: str,
    input_schema: dict[str, Any],
    calls: dict[str, int],
    real: dict[str, Any] | None = None,
    control: dict[str, Any] | None = None,
) -> list[bool]:
    outcomes: list[bool] = []

    @hypothesis.settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(args=arguments_for(input_schema, real))
    def call_tool(args: dict[str, Any]) -> None:
        calls[name] = calls.get(name, 0) + 1
        # An MCPError (a JSON-RPC error) or a transport failure raises here and fails the test.
        result = client.run(client.client.call_tool(name, args))
        assert result.content, (name, args)
        outcomes.append(bool(result.is_error))
        if result.is_error:
            text = " ".join(getattr(part, "text", "") for part in result.content)
            assert text and "Traceback" not in text and "internal error" not in text.lower(), text

    if control is not None:
        # One call known to be good runs first: the control that shows success is reachable at all.
        call_tool = hypothesis.example(args=control)(call_tool)
    call_tool()
    return outcomes


def test_every_tool_answers_generated_arguments(client: ClientThread) -> None:
    tools = client.run(client.client.list_tools()).tools
    assert len(tools) >= 8
    calls: dict[str, int] = {}
    for tool in tools:
        _fuzz_tool(client, tool.name, tool.input_schema, calls)
    assert all(calls[tool.name] >= EXAMPLES for tool in tools), calls


def _rpc_error(response: httpx.Response, status: int, code: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    reply = response.json()
    assert reply["jsonrpc"] == "2.0" and reply["error"]["code"] == code, reply
    return str(reply["error"]["message"])


@BOTH_MCP_PATHS
async def test_raw_jsonrpc_that_is_not_a_call(live: LiveServer) -> None:
    """What a hand-written or broken client sends: each gets the JSON-RPC error that names its fault."""
    body, headers = call({"query": "x"}, MODERN)
    message = json.loads(body)
    async with httpx.AsyncClient(base_url=live.base_url, timeout=20) as http:

        async def post(content: bytes, extra: dict[str, str] | None = None) -> httpx.Response:
            return await http.post("/mcp", content=content, headers=headers | (extra or {}))

        for broken in (b'{"jsonrpc": "2.0", "id": 1, ', b"", b'{"a": "\xff\xfe"}', b"\x00"):
            assert _rpc_error(await post(broken), 400, -32700) == "Parse error"
        # Batches (gone from the protocol since 2025-06-18), a bare value, no method, the wrong version.
        not_requests = [
            [],
            [message, message],
            "hello",
            {k: v for k, v in message.items() if k != "method"},
            message | {"jsonrpc": "1.0"},
        ]
        for value in not_requests:
            assert "single JSON-RPC request" in _rpc_error(
                await post(json.dumps(value).encode()), 400, -32600
            )
        unknown = message | {"method": "no/such/method"}
        reply = await post(json.dumps(unknown).encode(), {"mcp-method": "no/such/method"})
        assert reply.status_code in (200, 400, 404), reply.text
        assert reply.json()["error"]["code"] == -32601 and reply.json()["id"] == 1
        # The header naming another method than the body is refused before anything runs.
        assert "does not match" in _rpc_error(await post(json.dumps(unknown).encode()), 400, -32020)


@BOTH_MCP_PATHS
async def test_wrong_headers_are_refused_before_the_body_is_read(live: LiveServer) -> None:
    body, headers = call({"query": "x"}, MODERN)
    async with httpx.AsyncClient(base_url=live.base_url, timeout=20) as http:

        async def post(extra: dict[str, str]) -> httpx.Response:
            return await http.post("/mcp", content=body, headers=headers | extra)

        for media_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
            response = await post({"content-type": media_type})
            assert (response.status_code, response.text) == (400, "Invalid Content-Type header")
        assert (await post({"accept": "text/html"})).status_code == 406
        # DNS rebinding: a Host this server does not answer for, a page of another origin.
        response = await post({"host": "evil.test"})
        assert (response.status_code, response.text) == (421, "Invalid Host header")
        response = await post({"origin": "https://evil.test"})
        assert (response.status_code, response.text) == (403, "Invalid Origin header")
        response = await post({"origin": live.base_url})
        assert response.status_code == 200 and response.json()["result"]["isError"] is False
        for method in ("PUT", "PATCH"):
            assert (await http.request(method, "/mcp", content=body, headers=headers)).status_code == 405


# Destructive owner calls last, so the calls before them meet a listing and a key that still exist.
_OWNER_ORDER = [
    "get_server",
    "get_server_health",
    "update_server",
    "delete_server",
    "rotate_api_key",
    "revoke_api_key",
]


def test_owner_tools_on_a_real_listing_with_its_key(live: LiveServer, dns: ThreadedDnsServer) -> None:
    """Generated arguments rarely name a listing: here name and domain mostly name a verified one and the
    owner's key goes along, so the update and key rules see generated values, not just "not found"."""
    claim, api_key = verified_listing(live.base_url, dns)
    owner = ClientThread(live.base_url, api_key)
    try:
        tools = {tool.name: tool for tool in owner.run(owner.client.list_tools()).tools}
        calls: dict[str, int] = {}
        succeeded: dict[str, int] = {}
        by_name, by_domain = {"name": claim["name"]}, {"domain": claim["domain"]}
        real = dict.fromkeys(_OWNER_ORDER[:4], by_name) | dict.fromkeys(_OWNER_ORDER[4:], by_domain)
        for name in _OWNER_ORDER:
            control = (
                real[name] | {"description": "A plain new description"} if name == "update_server" else None
            )
            outcomes = _fuzz_tool(owner, name, tools[name].input_schema, calls, real[name], control)
            succeeded[name] = outcomes.count(False)
    finally:
        owner.close()
    assert succeeded["get_server"] >= 1 and succeeded["update_server"] >= 1, succeeded
