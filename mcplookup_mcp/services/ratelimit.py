"""Rate limits on every surface: per client address and, counted apart, per API key, with a budget per
action (discover, register, verify; anything else takes the default budget).

A window opens at a subject's first request and lasts a minute; past its budget a request is refused
with the seconds left in that window. `RateLimiter` counts in process: behind N replicas a client may
get up to N times its budget. `RedisRateLimiter` counts in Redis, shared by every replica, with one
script call per request (every counter moved and read atomically); while Redis does not answer it counts
in process, so an outage of the cache never takes a surface down with it.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from mcplookup_mcp.core.errors import RateLimited
from mcplookup_mcp.core.metrics import RATE_LIMITED
from mcplookup_mcp.store.redis_store import RedisStore, StoreUnavailable

_MAX_KEYS = 100_000
WINDOW = 60

# KEYS: the counters; ARGV: the cost, the window in ms. Returns each counter's count and ms left.
_COUNT = """
local out = {}
for i, key in ipairs(KEYS) do
  local count = redis.call('INCRBY', key, ARGV[1])
  local left = redis.call('PTTL', key)
  if left < 0 then
    redis.call('PEXPIRE', key, ARGV[2])
    left = tonumber(ARGV[2])
  end
  out[2 * i - 1] = count
  out[2 * i] = left
end
return out
"""


@dataclass(frozen=True)
class Budgets:
    """Requests a minute for each action, per subject; `default` for actions not named."""

    default: int
    per_action: Mapping[str, int] = field(default_factory=dict)

    def of(self, action: str) -> int:
        return self.per_action.get(action, self.default)

    @classmethod
    def from_settings(cls, settings: Any) -> Budgets:
        default = settings.rate_limit_per_minute
        return cls(
            default,
            {
                "discover": settings.rate_limit_discover_per_minute,
                "register": settings.rate_limit_register_per_minute or default,
                "verify": settings.rate_limit_verify_per_minute or default,
            },
        )


class Limiter(Protocol):
    budgets: Budgets

    async def hit(self, action: str, client: str, cost: int = 1, *, api_key: str | None = None) -> None: ...

    async def close(self) -> None: ...


def _subjects(client: str, api_key: str | None) -> list[tuple[str, str]]:
    """(kind, id) pairs; a key is counted by a digest of it, never by the key itself."""
    subjects = [("address", client)]
    if api_key:
        subjects.append(("key", hashlib.sha256(api_key.encode()).hexdigest()[:32]))
    return subjects


def _refuse(action: str, kind: str, limit: int, retry_after: int) -> RateLimited:
    RATE_LIMITED.labels(action=action, subject=kind).inc()
    who = "this client address" if kind == "address" else "this API key"
    retry_after = max(1, retry_after)
    return RateLimited(
        f"too many {action} requests from {who}: the limit is {limit} a minute; retry in {retry_after} s",
        retry_after=retry_after,
    )


class RateLimiter:
    def __init__(
        self,
        per_minute: int,
        clock: Callable[[], float] = time.monotonic,
        budgets: Budgets | None = None,
    ) -> None:
        self.budgets = budgets or Budgets(per_minute)
        self._clock = clock
        self._windows: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    @property
    def per_minute(self) -> int:
        return self.budgets.default

    async def hit(self, action: str, client: str, cost: int = 1, *, api_key: str | None = None) -> None:
        """Count one request; raise RateLimited when a subject is over its budget for this window."""
        self.count(action, client, cost, api_key=api_key)

    def count(self, action: str, client: str, cost: int = 1, *, api_key: str | None = None) -> None:
        limit = self.budgets.of(action)
        now = self._clock()
        over: tuple[str, float] | None = None
        with self._lock:
            if len(self._windows) > _MAX_KEYS:
                self._windows = {k: v for k, v in self._windows.items() if now - v[0] < WINDOW}
            for kind, subject in _subjects(client, api_key):
                key = f"{action}\x00{kind}\x00{subject}"
                start, count = self._windows.get(key, (now, 0))
                if now - start >= WINDOW:
                    start, count = now, 0
                count += cost
                self._windows[key] = (start, count)
                if count > limit and over is None:
                    over = (kind, WINDOW - (now - start))
        if over is not None:
            raise _refuse(action, over[0], limit, math.ceil(over[1]))

    async def close(self) -> None:
        return None


class RedisRateLimiter:
    """The same windows, counted in Redis under `<prefix>:rl:<action>:<kind>:<subject>`."""

    def __init__(self, store: RedisStore, budgets: Budgets) -> None:
        self.budgets = budgets
        self.store = store
        self._script = store.client.register_script(_COUNT)
        self._fallback = RateLimiter(budgets.default, budgets=budgets)

    async def hit(self, action: str, client: str, cost: int = 1, *, api_key: str | None = None) -> None:
        subjects = _subjects(client, api_key)
        keys = [f"{self.store.prefix}:rl:{action}:{kind}:{subject}" for kind, subject in subjects]
        try:
            counted = await self.store.run(
                "ratelimit", lambda _: self._script(keys=keys, args=[cost, WINDOW * 1000])
            )
        except StoreUnavailable:
            self._fallback.count(action, client, cost, api_key=api_key)
            return
        limit = self.budgets.of(action)
        for (kind, _), count, left in zip(subjects, counted[::2], counted[1::2], strict=True):
            if int(count) > limit:
                raise _refuse(action, kind, limit, math.ceil(int(left) / 1000))

    async def close(self) -> None:
        return None  # the store is closed by its owner


def make_limiter(budgets: Budgets, store: RedisStore | None) -> Limiter:
    return (
        RedisRateLimiter(store, budgets)
        if store is not None
        else RateLimiter(budgets.default, budgets=budgets)
    )
