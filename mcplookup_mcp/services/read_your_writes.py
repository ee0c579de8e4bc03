"""Read-your-writes over streaming standbys: who just wrote, and where the primary's WAL ended then.

After a write (register, verify, an owner's change, a probe on request) the service remembers the
primary's WAL position under the writer's keys: its client address, its API key (a digest) and the
domain written. For REMEMBER_SECONDS a read by any of those keys, or about that domain, is served by a
standby only once it has replayed that position (Repository.standby_read waits a moment for it, then
reads the primary). With REDIS_URL the marks are shared, so the replica that serves the next request
knows what another replica wrote; without it, or while Redis does not answer, each process knows its
own writes only.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

from mcplookup_mcp.core import keys as api_keys
from mcplookup_mcp.core.client_address import ORIGIN
from mcplookup_mcp.store.redis_store import RedisStore, StoreUnavailable
from mcplookup_mcp.store.repository import Repository

# Far longer than streaming replication takes under any load a standby stays in rotation for.
REMEMBER_SECONDS = 30.0
# Marks held in process at once; past it the oldest go (their reads may then be a moment stale).
MAX_MARKS = 100_000


class WriteMarks:
    def __init__(
        self,
        repo: Repository,
        store: RedisStore | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.repo = repo
        self.store = store
        self._clock = clock
        self._marks: dict[str, tuple[int, float]] = {}

    @property
    def enabled(self) -> bool:
        return self.repo.standbys is not None

    async def wrote(self, domain: str | None = None) -> None:
        """Remember the primary's WAL position now for the caller (and `domain`). Call after the commit."""
        if not self.enabled:
            return
        position = await self.repo.wal_position()
        names = _caller_keys(domain)
        expires = self._clock() + REMEMBER_SECONDS
        for name in names:
            self._marks.pop(name, None)
            self._marks[name] = (max(position, self._local(name)), expires)
        while len(self._marks) > MAX_MARKS:
            self._marks.pop(next(iter(self._marks)))
        if self.store is not None:
            store = self.store
            ttl = int(REMEMBER_SECONDS * 1000)

            async def share(r: object) -> None:
                pipe = r.pipeline(transaction=False)  # type: ignore[attr-defined]
                for name in names:
                    pipe.set(self._redis_key(name), position, px=ttl)
                await pipe.execute()

            with contextlib.suppress(StoreUnavailable):
                await store.run("cache", share)

    async def floor(self, domain: str | None = None) -> int:
        """The WAL position a read by the caller (about `domain`) must see; 0 when nothing was written."""
        if not self.enabled:
            return 0
        names = _caller_keys(domain)
        best = max((self._local(name) for name in names), default=0)
        if self.store is not None:
            keys = [self._redis_key(name) for name in names]
            with contextlib.suppress(StoreUnavailable):
                found = await self.store.run("cache", lambda r: r.mget(keys))
                best = max([best, *(int(v) for v in found if v is not None)])
        return best

    def _local(self, name: str) -> int:
        found = self._marks.get(name)
        if found is None:
            return 0
        if found[1] <= self._clock():
            del self._marks[name]
            return 0
        return found[0]

    def _redis_key(self, name: str) -> str:
        assert self.store is not None
        return f"{self.store.prefix}:wrote:{name}"


def _caller_keys(domain: str | None) -> list[str]:
    names: list[str] = []
    origin = ORIGIN.get()
    if origin is not None:
        names.append(f"addr:{origin.address}")
        if origin.api_key:
            names.append(f"key:{api_keys.digest(origin.api_key).hex()[:32]}")
    if domain:
        names.append(f"domain:{domain}")
    return names


def domain_of_name(name: str | None) -> str | None:
    """The domain a registered server's name stands for (com.example/mail -> example.com)."""
    if not name or "/" not in name:
        return None
    return ".".join(reversed(name.split("/", 1)[0].split(".")))
