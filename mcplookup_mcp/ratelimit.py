"""Per-client limits on costly or abusable actions (register, verify).

In process: a fixed window per (action, client) key. Each replica counts on its own, so behind N replicas
a client may get up to N times the limit; a shared Redis-backed limiter replaces this where that matters.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from mcplookup_mcp.errors import RateLimited

_MAX_KEYS = 100_000


class RateLimiter:
    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._windows: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def hit(self, action: str, client: str, cost: int = 1) -> None:
        """Count one request; raise RateLimited when the client is over its limit for this minute."""
        now = self._clock()
        key = f"{action}\x00{client}"
        with self._lock:
            if len(self._windows) > _MAX_KEYS:
                self._windows = {k: v for k, v in self._windows.items() if now - v[0] < 60}
            start, count = self._windows.get(key, (now, 0))
            if now - start >= 60:
                start, count = now, 0
            count += cost
            self._windows[key] = (start, count)
        if count > self.per_minute:
            retry_after = max(1, math.ceil(60 - (now - start)))
            raise RateLimited(
                f"too many {action} requests from this client: the limit is {self.per_minute} a minute; "
                f"retry in {retry_after} s",
                retry_after=retry_after,
            )
