"""Recent discovery answers, kept in this replica's memory.

An answer is reused only while the registry's discovery generation (a sequence that every change to a
listing moves, whichever replica or process makes it: see migration 0005) is the one it was computed
under. It is fresh for `ttl` seconds; for one more `ttl` it is stale: still served, while the caller
computes it again in the background, so a popular question never waits for its answer to expire. That
bounds how late what the prober writes (health status, uptime, latency, trust) can show: two TTLs and
one search. Agents ask the same few questions many times over; a repeated question then costs one
tiny query instead of a ranked search.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

Answer = TypeVar("Answer")


class AnswerCache(Generic[Answer]):
    def __init__(self, ttl: float, entries: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.entries = entries
        self._clock = clock
        self._generation: int | None = None
        self._answers: OrderedDict[Hashable, tuple[float, Answer]] = OrderedDict()

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
        fresh_until, answer = found
        now = self._clock()
        if now >= fresh_until + self.ttl:
            del self._answers[key]
            return None
        self._answers.move_to_end(key)
        return answer, now < fresh_until

    def put(self, key: Hashable, generation: int, answer: Answer) -> None:
        if not self.enabled or generation != self._generation:
            # Computed under a generation that has moved on since: never stored.
            return
        self._answers[key] = (self._clock() + self.ttl, answer)
        self._answers.move_to_end(key)
        while len(self._answers) > self.entries:
            self._answers.popitem(last=False)
