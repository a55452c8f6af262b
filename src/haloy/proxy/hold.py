"""Hold: requests to a route wait for a backend instead of failing.

A route holds while its snapshot says `paused` (haloyd pauses it while a replace deploy stops
the old version before the new one runs), or, with `hold_when_empty`, while it has no active
backend. A held request waits in its route's bounded queue, at most the route's
`hold_timeout`; a full queue or an expired wait answers 503. Every new snapshot releases the
queues: a route that no longer holds dispatches its requests in arrival order, one that still
holds keeps them (their timers keep running), a route that is gone answers them 502.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from haloy.wire.snapshot import Route

if TYPE_CHECKING:
    from haloy.proxy.exchange import Exchange
    from haloy.proxy.routes import RouteEntry, RouteTable


def route_holds(route: Route, has_active: bool) -> bool:
    """True when requests to `route` wait: it is paused, or empty with hold_when_empty."""
    return route.paused or (not has_active and route.hold_when_empty)


class HoldQueues:
    """The held requests of one worker, queued per route (by canonical host)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, capacity: int) -> None:
        self.loop = loop
        self.capacity = capacity  # held requests per route (Limits.hold_queue)
        self.queues: dict[bytes, deque[Exchange]] = {}

    def hold(self, ex: Exchange, entry: RouteEntry) -> None:
        """Queue `ex` until its route releases it (503 if the queue is full)."""
        queue = self.queues.setdefault(entry.canonical, deque())
        if len(queue) >= self.capacity:
            ex.client.local_error(ex, 503)
            return
        if ex.hold_timer is None:  # a request held again keeps its first deadline
            ex.hold_timer = self.loop.call_later(
                entry.route.hold_timeout, self._expired, ex, entry.canonical
            )
        queue.append(ex)

    def _expired(self, ex: Exchange, canonical: bytes) -> None:
        ex.hold_timer = None
        queue = self.queues.get(canonical)
        if queue is not None and ex in queue:
            queue.remove(ex)
        if not ex.cancelled:
            ex.client.local_error(ex, 503)

    def release(self, table: RouteTable, dispatch: Callable[[Exchange], None]) -> None:
        """A new route table: dispatch what no longer holds, keep what does, 502 the rest."""
        queues, self.queues = self.queues, {}
        for canonical, queue in queues.items():
            match = table.hosts.get(canonical)
            for ex in queue:
                if ex.cancelled:
                    continue
                if match is None:
                    _stop_timer(ex)
                    ex.client.local_error(ex, 502)
                    continue
                ex.entry = match.entry
                if match.entry.holds:
                    self.hold(ex, match.entry)
                else:
                    _stop_timer(ex)
                    dispatch(ex)

    def forget(self, ex: Exchange) -> None:
        """The client went away: `ex`, if held, leaves its queue."""
        if ex.hold_timer is None:
            return
        _stop_timer(ex)
        if ex.entry is not None:
            queue = self.queues.get(ex.entry.canonical)
            if queue is not None and ex in queue:
                queue.remove(ex)

    def count(self, canonical: bytes) -> int:
        """Requests held for the route with this canonical host (the `status` reply)."""
        return len(self.queues.get(canonical, ()))


def _stop_timer(ex: Exchange) -> None:
    if ex.hold_timer is not None:
        ex.hold_timer.cancel()
        ex.hold_timer = None
