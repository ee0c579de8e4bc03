"""One database read shared by every search that asked for it while the previous one ran.

Each search must see the discovery generation as it was when the search arrived, or later: a listing
written before the search must be in its answer. A read already running may have started before a new
caller asked, so the caller does not join it; it waits for the next read, which starts the moment the
running one ends and serves everyone who asked in between. Under load that is one read for many
searches instead of one each, and never an older value than a caller's own read would have given.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

Value = TypeVar("Value")


def quietly_retrieved(done: asyncio.Future[Any]) -> None:
    """A done-callback for a future that several callers await: each re-raises its error itself, and
    when none is left waiting the error must not be reported as never retrieved."""
    if not done.cancelled():
        done.exception()


class SharedRead(Generic[Value]):
    def __init__(self, read: Callable[[], Awaitable[Value]]) -> None:
        self._read = read
        self._busy = False
        self._next: asyncio.Future[Value] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def get(self) -> Value:
        if self._busy:
            if self._next is None:
                self._next = asyncio.get_running_loop().create_future()
                self._next.add_done_callback(quietly_retrieved)
            return await asyncio.shield(self._next)
        self._busy = True
        try:
            return await self._read()
        finally:
            self._hand_off()

    def _hand_off(self) -> None:
        waiting, self._next = self._next, None
        if waiting is None:
            self._busy = False
            return
        # Still busy: the read for those who asked during the one that just ended starts now.
        task = asyncio.create_task(self._read_for(waiting))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _read_for(self, waiting: asyncio.Future[Value]) -> None:
        try:
            waiting.set_result(await self._read())
        except Exception as exc:
            waiting.set_exception(exc)
        except BaseException:
            waiting.cancel()
            raise
        finally:
            self._hand_off()
