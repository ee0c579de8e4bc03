"""Recent discovery answers, kept in this replica's memory, and (`SharedAnswers`) in Redis for all.

An answer is reused only while the registry's discovery generation (a sequence that every change to a
listing moves, whichever replica or process makes it: see migration 0005) is the one it was computed
under. It is fresh for `ttl` seconds; for one more `ttl` it is stale: still served, while it is computed
again in the background, so a popular question never waits for its answer to expire. That bounds how
late what the prober writes (health status, uptime, latency, trust) can show: two TTLs and one search.
An answer may say it lives shorter (`ttl_of`): a lexical answer given because the embedding model was
slow or failing is kept only briefly, so the fused answer is back soon after the model recovers.

Concurrent askers of one missing answer share one computation, and background refreshes run one at a
time, so answers that expire together do not all hit the database at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

import structlog

from mcplookup_mcp.services.shared_read import quietly_retrieved
from mcplookup_mcp.store.redis_store import RedisStore, StoreUnavailable

Answer = TypeVar("Answer")
Flight = tuple[int, Hashable]

log = structlog.get_logger("mcplookup.answer_cache")


class AnswerCache(Generic[Answer]):
    def __init__(
        self,
        ttl: float,
        entries: int,
        clock: Callable[[], float] = time.monotonic,
        count: Callable[[str], None] = lambda outcome: None,
        ttl_of: Callable[[Answer], float] | None = None,
    ) -> None:
        self.ttl = ttl
        self.entries = entries
        self._clock = clock
        self._count = count
        # An answer's own lifetime where it is not `ttl` (a lexical fallback: briefly); 0 keeps it out.
        self._ttl_of = ttl_of
        self._generation: int | None = None
        # key -> (fresh until, stale until, answer)
        self._answers: OrderedDict[Hashable, tuple[float, float, Answer]] = OrderedDict()
        self._in_flight: dict[Flight, asyncio.Future[Answer]] = {}
        self._refreshes: dict[Flight, asyncio.Task[None]] = {}
        self._refresh_slot = asyncio.Semaphore(1)

    @property
    def enabled(self) -> bool:
        return self.ttl > 0 and self.entries > 0

    def __len__(self) -> int:
        return len(self._answers)

    def get(self, key: Hashable, generation: int) -> tuple[Answer, bool] | None:
        """The answer and whether it is still fresh (a stale one is due to be computed again)."""
        if generation != self._generation:
            self._answers.clear()
            self._generation = generation
            return None
        found = self._answers.get(key)
        if found is None:
            return None
        fresh_until, stale_until, answer = found
        now = self._clock()
        if now >= stale_until:
            del self._answers[key]
            return None
        self._answers.move_to_end(key)
        return answer, now < fresh_until

    def put(self, key: Hashable, generation: int, answer: Answer) -> None:
        if not self.enabled or generation != self._generation:
            # Computed under a generation that has moved on since: never stored.
            return
        ttl = min(self.ttl, self._ttl_of(answer)) if self._ttl_of is not None else self.ttl
        if ttl <= 0:
            self._answers.pop(key, None)
            return
        now = self._clock()
        self._answers[key] = (now + ttl, now + 2 * ttl, answer)
        self._answers.move_to_end(key)
        while len(self._answers) > self.entries:
            self._answers.popitem(last=False)

    async def answer(
        self, key: Hashable, generation: int, compute: Callable[[], Awaitable[Answer]]
    ) -> Answer:
        """The cached answer, fresh or stale, else `compute`'s (shared with whoever asks meanwhile).
        `generation` must be read before anything `compute` reads."""
        cached = self.get(key, generation)
        if cached is not None:
            answer, fresh = cached
            self._count("hit" if fresh else "stale")
            if not fresh:
                self._refresh((generation, key), compute)
            return answer
        answer = await self._once((generation, key), compute)
        self.put(key, generation, answer)
        return answer

    async def settle(self, *, cancel: bool = False) -> None:
        """Wait for (or cancel, at shutdown) the answers being computed again in the background."""
        tasks = list(self._refreshes.values())
        for task in tasks if cancel else ():
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _refresh(self, flight: Flight, compute: Callable[[], Awaitable[Answer]]) -> None:
        if flight in self._in_flight or flight in self._refreshes:
            return
        generation, key = flight

        async def refresh() -> None:
            try:
                async with self._refresh_slot:
                    if generation == self._generation:
                        self.put(key, generation, await self._once(flight, compute))
            except Exception as exc:
                log.warning("stale answer not computed again", error=type(exc).__name__)
            finally:
                self._refreshes.pop(flight, None)

        self._refreshes[flight] = asyncio.create_task(refresh())

    async def _once(self, flight: Flight, compute: Callable[[], Awaitable[Answer]]) -> Answer:
        """Run `compute` unless another caller is already running it for the same key and generation;
        then wait for that one's answer."""
        while (pending := self._in_flight.get(flight)) is not None:
            try:
                answer = await asyncio.shield(pending)
            except asyncio.CancelledError:
                if not pending.cancelled():
                    raise  # this caller was cancelled
                continue  # the caller running it went away: run it here
            self._count("joined")
            return answer
        self._count("miss")
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        future.add_done_callback(quietly_retrieved)
        self._in_flight[flight] = future
        try:
            answer = await compute()
        except Exception as exc:
            future.set_exception(exc)
            raise
        except BaseException:
            future.cancel()
            raise
        finally:
            del self._in_flight[flight]
        future.set_result(answer)
        return answer


class SharedAnswers(Generic[Answer]):
    """The second tier, in Redis, shared by every replica: what one replica computed, another that does
    not hold it serves without searching. Keys carry the discovery generation, so a write on any replica
    makes every replica's next answer fresh (older entries are never read again and expire). An entry
    lives `ttl` seconds; with this process's tier in front an answer may so be up to three TTLs old for
    what moves no generation (the prober's figures), never older for a listing's change."""

    def __init__(
        self,
        store: RedisStore,
        ttl: float,
        encode: Callable[[Answer], bytes],
        decode: Callable[[bytes], Answer],
        count: Callable[[str], None] = lambda outcome: None,
        ttl_of: Callable[[Answer], float] | None = None,
    ) -> None:
        self.store = store
        self.ttl = ttl
        self.ttl_ms = max(1, int(ttl * 1000))
        self._ttl_of = ttl_of
        self._encode = encode
        self._decode = decode
        self._count = count

    def _key(self, key: Hashable, generation: int) -> str:
        digest = hashlib.sha256(repr(key).encode()).hexdigest()[:40]
        return f"{self.store.prefix}:answer:{generation}:{digest}"

    async def get(self, key: Hashable, generation: int) -> Answer | None:
        try:
            raw = await self.store.run("cache", lambda r: r.get(self._key(key, generation)))
        except StoreUnavailable:
            self._count("unavailable")
            return None
        if raw is None:
            self._count("miss")
            return None
        try:
            answer = self._decode(raw if isinstance(raw, bytes) else raw.encode())
        except ValueError:  # written by another version of the service: compute it again
            self._count("miss")
            return None
        self._count("hit")
        return answer

    async def put(self, key: Hashable, generation: int, answer: Answer) -> None:
        ttl_ms = self.ttl_ms
        if self._ttl_of is not None:
            ttl_ms = min(ttl_ms, int(self._ttl_of(answer) * 1000))
            if ttl_ms <= 0:
                return
        with contextlib.suppress(StoreUnavailable):
            await self.store.run(
                "cache", lambda r: r.set(self._key(key, generation), self._encode(answer), px=ttl_ms)
            )

    async def answer(
        self, key: Hashable, generation: int, compute: Callable[[], Awaitable[Answer]]
    ) -> Answer:
        """The shared answer, else `compute`'s, then shared."""
        found = await self.get(key, generation)
        if found is not None:
            return found
        answer = await compute()
        await self.put(key, generation, answer)
        return answer
