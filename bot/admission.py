"""Under a burst, events get their first reply in the order they came.

An event's work before its first reply (who and where, the checks, the pending use) runs for at
most `starts_at_once` events at a time, first come first served; the others wait their turn without
using the CPU. Left to asyncio's round robin, every event of a burst advances at the pace of all the
others: with 200 asks at once on PostgreSQL the first Slack replies came after 0.8 s at the median and
even the earliest after 0.3 s (bench/platform.py), and the platform's acknowledgements, which have a
3-second deadline, queued behind that work. A turn ends at the event's first reply, when the event
is done, or after `HOLD_AT_MOST` seconds, whichever comes first: an event whose first reply waits on
something slow (a builder's draft from the LLM, a file being read) holds the others back that long
at most.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from bot.replies import Outbox, Reply, Sent

HOLD_AT_MOST = 0.25  # seconds; an ask's turn lasts a few milliseconds even in a burst


class Admission:
    def __init__(self, at_once: int) -> None:
        self._slots = asyncio.Semaphore(at_once)  # wakes its waiters in the order they came

    @asynccontextmanager
    async def turn(self, out: Outbox) -> AsyncIterator[Outbox]:
        """Waits for a turn; yields the outbox to use, whose first reply ends the turn."""
        await self._slots.acquire()
        turn = _Turn(out, self._slots)
        try:
            yield turn
        finally:
            turn.end()


class _Turn:
    def __init__(self, out: Outbox, slots: asyncio.Semaphore) -> None:
        self._out = out
        self._slots: asyncio.Semaphore | None = slots
        self._timer = asyncio.get_running_loop().call_later(HOLD_AT_MOST, self.end)

    def end(self) -> None:
        if self._slots is not None:
            self._timer.cancel()
            self._slots.release()
            self._slots = None

    async def send(self, reply: Reply) -> Sent:
        self.end()  # the reply itself (and an answer's stream) does not hold the others back
        return await self._out.send(reply)
