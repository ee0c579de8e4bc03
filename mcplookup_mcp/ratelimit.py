"""Per-client limits on costly or abusable actions (register, verify): a fixed window per minute.

`RateLimiter` counts in process: behind N replicas a client may get up to N times the limit.
`RedisRateLimiter` counts in Redis, shared by every replica; when Redis does not answer it falls back
to counting in process, so an outage of the cache never takes registration down with it.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Protocol

import redis.asyncio
import redis.exceptions
import structlog

from mcplookup_mcp.errors import RateLimited

_MAX_KEYS = 100_000
_WINDOW = 60

log = structlog.get_logger("mcplookup.ratelimit")


class Limiter(Protocol):
    per_minute: int

    async def hit(self, action: str, client: str, cost: int = 1) -> None: ...

    async def close(self) -> None: ...


def _refuse(action: str, limit: int, retry_after: int) -> RateLimited:
    return RateLimited(
        f"too many {action} requests from this client: the limit is {limit} a minute; retry in {retry_after} s",
        retry_after=max(1, retry_after),
    )


class RateLimiter:
    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._windows: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    async def hit(self, action: str, client: str, cost: int = 1) -> None:
        """Count one request; raise RateLimited when the client is over its limit for this minute."""
        self.count(action, client, cost)

    def count(self, action: str, client: str, cost: int = 1) -> None:
        now = self._clock()
        key = f"{action}\x00{client}"
        with self._lock:
            if len(self._windows) > _MAX_KEYS:
                self._windows = {k: v for k, v in self._windows.items() if now - v[0] < _WINDOW}
            start, count = self._windows.get(key, (now, 0))
            if now - start >= _WINDOW:
                start, count = now, 0
            count += cost
            self._windows[key] = (start, count)
        if count > self.per_minute:
            raise _refuse(action, self.per_minute, math.ceil(_WINDOW - (now - start)))

    async def close(self) -> None:
        return None


class RedisRateLimiter:
    """The same window, counted in Redis under `<prefix>:<action>:<client>:<minute>`."""

    def __init__(self, url: str, per_minute: int, prefix: str = "mcplookup:rl") -> None:
        self.per_minute = per_minute
        self.prefix = prefix
        self._redis = redis.asyncio.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self._fallback = RateLimiter(per_minute)

    async def hit(self, action: str, client: str, cost: int = 1) -> None:
        now = time.time()
        window = int(now // _WINDOW)
        key = f"{self.prefix}:{action}:{client}:{window}"
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incrby(key, cost)
                pipe.expire(key, _WINDOW * 2)
                count, _ = await pipe.execute()
        except (redis.exceptions.RedisError, OSError) as exc:
            log.warning("rate limit store unavailable; counting in process", error=type(exc).__name__)
            self._fallback.count(action, client, cost)
            return
        if int(count) > self.per_minute:
            raise _refuse(action, self.per_minute, math.ceil((window + 1) * _WINDOW - now))

    async def close(self) -> None:
        await self._redis.aclose()


def make_limiter(redis_url: str | None, per_minute: int, prefix: str = "mcplookup") -> Limiter:
    """Keys live under `<prefix>:rl:`, so environments sharing one Redis keep their counts apart."""
    return (
        RedisRateLimiter(redis_url, per_minute, prefix=f"{prefix}:rl")
        if redis_url
        else RateLimiter(per_minute)
    )
