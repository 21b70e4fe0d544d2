"""Under a burst, events get their first reply in the order they came.

An event's work before its first reply (who and where, the checks, the pending use) runs for at
most `starts_at_once` events at a time, first come first served; the others wait their turn without
using the CPU. Left to asyncio's round robin, every event of a burst advances at the pace of all the
others: with 200 asks at once on PostgreSQL the first Slack replies came after 0.8 s at the median and
even the earliest after 0.3 s (bench/platform.py), and the platform's acknowledgements, which have a
3-second deadline, queued behind that work. A turn ends at the event's first reply, when the event
is done, or after `HOLD_AT_MOST` seconds, whichever comes first: an event whose first reply waits on
something slow (a builder's draft from the LLM, a file being read) holds the others back that long
at most. Work a person is waiting to see on the platform (an acknowledgement) goes before any
turn starts (`Admission.urgent`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress

from bot.replies import Outbox, Reply, Sent

HOLD_AT_MOST = 0.25  # seconds; an ask's turn lasts a few milliseconds even in a burst


class Admission:
    def __init__(self, at_once: int) -> None:
        self._slots = asyncio.Semaphore(at_once)  # wakes its waiters in the order they came
        self._urgent = 0
        self._calm = asyncio.Event()
        self._calm.set()

    @contextmanager
    def urgent(self) -> Iterator[Callable[[], None]]:
        """Platform work a person is waiting to see, such as an acknowledgement on its way out: no
        turn starts until it is done (or `HOLD_AT_MOST` has passed), and the caller ends it with
        the function it is given as soon as its request is written, not when the platform answers.

        Why: the acknowledgements of the commands that have just come in and the turns of the ones
        before them share one core, and on SQLite a turn's work runs a millisecond or more at a
        stretch; every acknowledgement waiting behind turns showed that much later (Discord, 200
        asks at once on SQLite: "thinking…" p95 218–231 ms, 79–93 ms with this, bench/platform.py).
        Ended at the write, it costs nothing when the platform is far away: its round trip holds no
        one up."""
        self._urgent += 1
        self._calm.clear()
        ended = False

        def end() -> None:
            nonlocal ended
            if not ended:
                ended = True
                self._urgent -= 1
                if not self._urgent:
                    self._calm.set()

        try:
            yield end
        finally:
            end()

    @asynccontextmanager
    async def turn(self, out: Outbox) -> AsyncIterator[Outbox]:
        """Waits for a turn; yields the outbox to use, whose first reply ends the turn."""
        if self._urgent:
            with suppress(TimeoutError):
                async with asyncio.timeout(HOLD_AT_MOST):
                    await self._calm.wait()
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
