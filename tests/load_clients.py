"""Clients that keep calling the app while a test breaks something under it, and what each call got.

A client is a step, `step(n)`, that makes its n-th call and says what came back as (outcome, detail):
"ok" for an answer, or the name of the refusal it was ("503", "isError", ...). A step that raises (a
transport error: a connection reset, a response that is not HTTP or JSON-RPC) is recorded too, under
the exception's name, so the test judges every call and none is lost in a traceback.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

Step = Callable[[int], Awaitable[tuple[str, str]]]
OK = "ok"
# The answers of a dependency that is away, as every surface must give them (docs/limits.md).
REFUSED_REST = "503"
REFUSED_MCP = "isError"


@dataclass(frozen=True)
class Call:
    client: str
    started: float  # time.monotonic()
    ended: float
    outcome: str
    detail: str = ""


class Load:
    """`clients` calling over and over, each after its previous call returned, until `stop()`."""

    def __init__(self, clients: Mapping[str, Step]) -> None:
        self.calls: list[Call] = []
        self._names = set(clients)
        self._stopping = asyncio.Event()
        self._tasks = [asyncio.create_task(self._keep_calling(name, step)) for name, step in clients.items()]

    async def _keep_calling(self, name: str, step: Step) -> None:
        n = 0
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                outcome, detail = await step(n)
            except Exception as exc:  # a transport error is an outcome like any other, judged by the test
                outcome, detail = type(exc).__name__, str(exc)[:300]
            self.calls.append(Call(name, started, time.monotonic(), outcome, detail))
            n += 1

    async def stop(self) -> list[Call]:
        self._stopping.set()
        await asyncio.gather(*self._tasks)
        return self.calls

    async def until_each_answered_after(self, moment: float, within: float) -> float:
        """Waits until every client has had an answer to a call it started after `moment`; returns how
        long after `moment` the last of them had its first, failing past `within` seconds."""
        deadline = moment + within
        while True:
            first: dict[str, float] = {}
            for call in self.calls:
                if call.started >= moment and call.outcome == OK:
                    first[call.client] = min(first.get(call.client, call.ended), call.ended)
            if first.keys() >= self._names:
                return max(first.values()) - moment
            if time.monotonic() > deadline:
                raise AssertionError(f"no answer {within} s on for {sorted(self._names - first.keys())}")
            await asyncio.sleep(0.05)

    def answered(self) -> int:
        return sum(call.outcome == OK for call in self.calls)


def unexpected(calls: Iterable[Call], allowed: Iterable[str] = (OK,)) -> list[Call]:
    """The calls whose outcome is none of `allowed`."""
    kept = set(allowed)
    return [call for call in calls if call.outcome not in kept]


def rest_outcome(response: httpx.Response, expected: int = 200) -> tuple[str, str]:
    """ "ok" for the expected status, "503" for a refusal in the form clients rely on (a problem with
    Retry-After), else the status with the body to show."""
    if response.status_code == expected:
        return OK, ""
    if (
        response.status_code == 503
        and response.headers.get("retry-after") == "5"
        and response.headers.get("content-type") == "application/problem+json"
        and response.json().get("type") == "https://mcplookup.org/problems/unavailable"
    ):
        return REFUSED_REST, ""
    return str(response.status_code), response.text[:300]


def mcp_outcome(result: Any, refusal: str | None = None) -> tuple[str, str]:
    """ "ok" for a result; "isError" for an isError result whose text ends with `refusal` (what to do
    about it); else what it was, with its text to show."""
    if not result.is_error:
        return OK, ""
    text = " ".join(getattr(part, "text", "") for part in result.content)
    if refusal is not None and text.endswith(refusal):
        return REFUSED_MCP, ""
    return ("isError, not saying when to retry" if refusal else "isError"), text[:300]
