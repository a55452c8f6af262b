"""The header deadline of newly accepted connections, kept in coarse buckets, not timers.

A uvloop timer per accepted connection (created, then cancelled when the first request
arrives or the connection closes) was about a tenth of the proxy's CPU per short-lived
connection. Connections are filed by deadline in quarter-second buckets instead; one timer
per bucket hands each survivor to its own `_on_timer`, which checks the exact deadline (and
arms a timer of its own for the remaining fraction of a second if it is not there yet).
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

# Buckets per second: a bucket's timer fires at the earliest deadline it may hold.
_PER_SECOND: Final = 4


class HeadWatch:
    """Deadline buckets for connections that have no timer of their own yet."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.buckets: dict[int, set[Any]] = {}

    def add(self, client: Any, deadline: float) -> None:
        """Call `client._on_timer()` at about `deadline` unless `discard` comes first."""
        key = int(deadline * _PER_SECOND)
        bucket = self.buckets.get(key)
        if bucket is None:
            self.buckets[key] = bucket = set()
            self.loop.call_at(key / _PER_SECOND, self._expire, key)
        bucket.add(client)
        client.watch_key = key

    def discard(self, client: Any) -> None:
        """`client` is closed or has its own timer now."""
        bucket = self.buckets.get(client.watch_key)
        if bucket is not None:
            bucket.discard(client)
        client.watch_key = 0

    def _expire(self, key: int) -> None:
        for client in self.buckets.pop(key, ()):
            client.watch_key = 0
            if not client.closed and client.timer is None:
                client._on_timer()
