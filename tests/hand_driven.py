"""A stand-in for a database read or search whose order of events a test sets by hand (pure logic)."""

from __future__ import annotations

import asyncio


class HandDriven:
    """Each call waits for `release`, then returns its own number (1 for the first to start) or raises
    `error`. Counts the calls started and the most running at once."""

    def __init__(self) -> None:
        self.started = 0
        self.running = 0
        self.most_at_once = 0
        self.release = asyncio.Event()
        self.error: Exception | None = None
        self._changed = asyncio.Condition()

    async def until_started(self, calls: int) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self.started >= calls)

    async def __call__(self) -> int:
        async with self._changed:
            self.started += 1
            number = self.started
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
            self._changed.notify_all()
        try:
            await self.release.wait()
            if self.error is not None:
                raise self.error
            return number
        finally:
            self.running -= 1
