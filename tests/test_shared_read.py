"""SharedRead: callers that ask while a read runs share the next read, never the running one (pure logic,
with a hand-driven stand-in for the database read)."""

from __future__ import annotations

import asyncio

import pytest
from hand_driven import HandDriven

from mcplookup_mcp.services.shared_read import SharedRead


async def running_with_waiters(
    waiting: int,
) -> tuple[HandDriven, SharedRead[int], asyncio.Task[int], list[asyncio.Task[int]]]:
    """A read under way for a first caller, and `waiting` callers who asked after it began."""
    reads = HandDriven()
    shared = SharedRead(reads)
    first = asyncio.create_task(shared.get())
    await reads.until_started(1)
    later = [asyncio.create_task(shared.get()) for _ in range(waiting)]
    await asyncio.sleep(0)
    return reads, shared, first, later


async def test_callers_during_a_read_share_the_next_one() -> None:
    reads, _, first, later = await running_with_waiters(5)
    assert reads.started == 1, "nobody joins a read that began before they asked"
    reads.release.set()
    assert await first == 1
    assert await asyncio.gather(*later) == [2] * 5
    assert reads.started == 2


async def test_an_idle_caller_reads_at_once() -> None:
    reads = HandDriven()
    reads.release.set()
    shared = SharedRead(reads)
    assert [await shared.get() for _ in range(3)] == [1, 2, 3]


async def test_a_failed_read_fails_everyone_who_shared_it_and_the_next_caller_reads_again() -> None:
    reads, shared, first, later = await running_with_waiters(3)
    reads.error = RuntimeError("the database went away")
    reads.release.set()
    with pytest.raises(RuntimeError):
        await first
    outcomes = await asyncio.gather(*later, return_exceptions=True)
    assert [str(o) for o in outcomes] == ["the database went away"] * 3
    reads.error = None
    assert await shared.get() == 3


async def test_a_caller_that_goes_away_does_not_strand_the_others() -> None:
    reads, _, first, (waiting,) = await running_with_waiters(1)
    first.cancel()
    await reads.until_started(2)
    reads.release.set()
    assert await waiting == 2
    assert first.cancelled()
