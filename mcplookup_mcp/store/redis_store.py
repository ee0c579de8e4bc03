"""The one Redis connection a replica shares between its answer cache and its rate limits.

Redis is an accelerator here, never a dependency: every call has a deadline, and when one fails the
caller falls back (answers from PostgreSQL, limits counted in process). The first failure of an outage
logs one warning and counts one outage; for `retry_seconds` after a failure no call is tried, so no
request pays a timeout while Redis is known to be away; then the next call tries again, and its success
ends the outage (logged once too). The client reconnects by itself. A password in the URL
(`redis://:secret@host:6379/0`) is used and never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis.asyncio
import redis.exceptions
import structlog
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from mcplookup_mcp.core.metrics import REDIS_FALLBACKS, REDIS_OUTAGES

T = TypeVar("T")

log = structlog.get_logger("mcplookup.redis")


class StoreUnavailable(Exception):
    """Redis did not answer in time; the caller does without it."""


class RedisStore:
    def __init__(
        self,
        url: str,
        prefix: str,
        *,
        timeout: float = 0.25,
        pool_size: int | None = None,
        retry_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.prefix = prefix
        self.timeout = timeout
        self.retry_seconds = retry_seconds
        self._clock = clock
        # No retries inside the client: one deadline per call, and the caller's fallback after it. With a
        # pool size, a call waits for a free connection within the same deadline.
        options: dict[str, Any] = {
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
            "retry": Retry(NoBackoff(), 0),
            "retry_on_timeout": False,
        }
        if pool_size is None:
            self.client = redis.asyncio.Redis.from_url(url, **options)
        else:
            pool = redis.asyncio.BlockingConnectionPool.from_url(
                url, max_connections=pool_size, timeout=timeout, **options
            )
            self.client = redis.asyncio.Redis(connection_pool=pool)
        self._down_since: float | None = None
        self._skip_until = 0.0

    @property
    def available(self) -> bool:
        return self._down_since is None

    async def run(self, use: str, call: Callable[[redis.asyncio.Redis], Awaitable[T]]) -> T:
        """`call`'s answer, or StoreUnavailable (counted under `use`) when Redis is away or too slow."""
        if self._down_since is not None and self._clock() < self._skip_until:
            REDIS_FALLBACKS.labels(use=use).inc()
            raise StoreUnavailable
        try:
            async with asyncio.timeout(self.timeout * 2):
                answer = await call(self.client)
        except (redis.exceptions.RedisError, OSError, TimeoutError) as exc:
            self._failed(exc)
            REDIS_FALLBACKS.labels(use=use).inc()
            await self._drop_idle_connections()
            raise StoreUnavailable from None
        if self._down_since is not None:
            log.warning("redis answers again", outage_seconds=round(self._clock() - self._down_since, 1))
            self._down_since = None
        return answer

    def _failed(self, exc: BaseException) -> None:
        now = self._clock()
        self._skip_until = now + self.retry_seconds
        if self._down_since is None:
            self._down_since = now
            REDIS_OUTAGES.inc()
            log.warning(
                "redis unavailable: answering from PostgreSQL and counting limits in process",
                error=type(exc).__name__,
            )

    async def _drop_idle_connections(self) -> None:
        # Connections left in the pool from before Redis went away are dead too, and the client does
        # not always notice before using one: after a kill -9 and a restart under load, such connections
        # failed calls ("Connection closed by server") once Redis was back, each failure taken for a
        # new outage (another warning, another count, another retry_seconds without Redis). Closed on
        # every failure, they reconnect when next used (tests/test_redis_down.py).
        with contextlib.suppress(Exception):
            await self.client.connection_pool.disconnect(inuse_connections=False)

    async def close(self) -> None:
        await self.client.aclose()
