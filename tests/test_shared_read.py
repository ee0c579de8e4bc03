"""SharedRead: callers that ask while a read runs share the next read, never the running one (pure logic,
with a hand-driven stand-in for the database read)."""

from __future__ import annotations

import asyncio

import pytest

from mcplookup_mcp.shared_read import SharedRead


class Reads:
    """Each read returns how many reads have started so far, once released."""

    def __init__(self) -> None:
        self.started = 0
        self.release = asyncio.Event()
        self.error: Exception | None = None
        self._changed = asyncio.Condition()

    async def read(self) -> int:
        async with self._changed:
            self.started += 1
            number = self.started
            self._changed.notify_all()
        await self.release.wait()
        if self.error is not None:
            raise self.error
        return number

    async def until_started(self, reads: int) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self.started >= reads)


async def test_callers_during_a_read_share_the_next_one() -> None:
    reads = Reads()
    shared = SharedRead(reads.read)
    first = asyncio.create_task(shared.get())
    await reads.until_started(1)
    later = [asyncio.create_task(shared.get()) for _ in range(5)]
    await asyncio.sleep(0)
    assert reads.started == 1, "nobody joins a read that began before they asked"
    reads.release.set()
    assert await first == 1
    assert await asyncio.gather(*later) == [2] * 5
    assert reads.started == 2


async def test_an_idle_caller_reads_at_once() -> None:
    reads = Reads()
    reads.release.set()
    shared = SharedRead(reads.read)
    assert [await shared.get() for _ in range(3)] == [1, 2, 3]


async def test_a_failed_read_fails_everyone_who_shared_it_and_the_next_caller_reads_again() -> None:
    reads = Reads()
    shared = SharedRead(reads.read)
    first = asyncio.create_task(shared.get())
    await reads.until_started(1)
    later = [asyncio.create_task(shared.get()) for _ in range(3)]
    await asyncio.sleep(0)
    reads.error = RuntimeError("the database went away")
    reads.release.set()
    with pytest.raises(RuntimeError):
        await first
    outcomes = await asyncio.gather(*later, return_exceptions=True)
    assert [str(o) for o in outcomes] == ["the database went away"] * 3
    reads.error = None
    assert await shared.get() == 3


async def test_a_caller_that_goes_away_does_not_strand_the_others() -> None:
    reads = Reads()
    shared = SharedRead(reads.read)
    first = asyncio.create_task(shared.get())
    await reads.until_started(1)
    waiting = asyncio.create_task(shared.get())
    await asyncio.sleep(0)
    first.cancel()
    await reads.until_started(2)
    reads.release.set()
    assert await waiting == 2
    assert first.cancelled()
