"""The coarse clock and the header-deadline buckets of fresh connections (service.py,
head_watch.py): deadlines may be a little late, never early; a closed connection is forgotten."""

from __future__ import annotations

import asyncio

from haloy.proxy.head_watch import HeadWatch
from haloy.proxy.service import CLOCK_TICK, ProxyService
from tests.fixtures.polling import await_until


class _Fresh:
    """What HeadWatch needs of a client connection; `_on_timer` records when it ran."""

    def __init__(self, done: asyncio.Event) -> None:
        self.closed = False
        self.timer = None
        self.watch_key = 0
        self.fired_at = 0.0
        self.done = done

    def _on_timer(self) -> None:
        self.fired_at = asyncio.get_running_loop().time()
        self.done.set()


async def test_clock_is_never_early_and_stops_when_idle() -> None:
    loop = asyncio.get_running_loop()
    service = ProxyService(loop)
    assert service.clock == 0.0
    before = loop.time()
    now = service.start_clock()
    assert before <= now <= loop.time() + CLOCK_TICK
    assert service.clock == now
    # No clients: the clock stops at the next tick. (Polled: the compiled ProxyService's
    # methods cannot be wrapped.)
    await await_until("the clock to stop", lambda: service.clock, lambda c: c == 0.0, timeout=5,
                      interval=CLOCK_TICK / 5)


async def test_head_watch_fires_at_the_deadline_and_forgets_discarded() -> None:
    loop = asyncio.get_running_loop()
    watch = HeadWatch(loop)
    done = asyncio.Event()
    kept, dropped = _Fresh(done), _Fresh(asyncio.Event())
    deadline = loop.time() + 0.3
    watch.add(kept, deadline)
    watch.add(dropped, deadline)
    assert kept.watch_key and dropped.watch_key
    watch.discard(dropped)
    assert dropped.watch_key == 0
    await asyncio.wait_for(done.wait(), 5)
    # The bucket fires at or before the deadline; the connection checks the exact time itself.
    assert kept.fired_at >= deadline - 1 / 4 - 0.01
    assert kept.watch_key == 0 and dropped.fired_at == 0.0
    assert not watch.buckets
