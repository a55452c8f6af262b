"""GET /v1/server/logs: haloyd's own log as server-sent events, from an in-memory ring.

`LogRing` is a logging.Handler `haloyd serve` installs on the root logger; it keeps the most
recent records (bounded, so a chatty daemon cannot grow without end) and wakes followers.
Records may come from any thread (the SQLite worker, the ACME client's), so appends take a
lock and followers are woken through their own loop's `call_soon_threadsafe`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from haloy.daemon.api.endpoints import SSE
from haloy.daemon.api.logs import parse_tail
from haloy.wire.api import ServerLogRecord

# A few thousand records cover hours of a quiet daemon and the whole story of a busy deploy.
DEFAULT_CAPACITY = 5000


class LogRing(logging.Handler):
    """The newest `capacity` log records, numbered, with wake-ups for followers."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY, level: int = logging.INFO) -> None:
        super().__init__(level)
        self._records: deque[ServerLogRecord] = deque(maxlen=capacity)
        self._seq = 0
        self._guard = threading.Lock()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    def emit(self, record: logging.LogRecord) -> None:
        """Keep one record (never raises: a broken log must not break the daemon)."""
        try:
            message = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                message += f" ({type(record.exc_info[1]).__name__}: {record.exc_info[1]})"
            with self._guard:
                self._seq += 1
                self._records.append(ServerLogRecord(
                    seq=self._seq,
                    time=dt.datetime.fromtimestamp(record.created, dt.UTC),
                    level=record.levelname.lower(),
                    logger=record.name,
                    message=message,
                ))
                waiters = list(self._waiters)
            for loop, event in waiters:
                loop.call_soon_threadsafe(event.set)
        except Exception:
            self.handleError(record)

    def since(self, seq: int) -> list[ServerLogRecord]:
        """Records numbered above `seq`, oldest first."""
        with self._guard:
            return [r for r in self._records if r.seq > seq]

    def tail(self, count: int) -> tuple[list[ServerLogRecord], int]:
        """The newest `count` records, oldest first, and the number of the newest record."""
        with self._guard:
            return (list(self._records)[-count:] if count else []), self._seq

    async def follow(
        self, after: int, heartbeat: float
    ) -> AsyncGenerator[ServerLogRecord | None, None]:
        """Records numbered above `after` as they come; None after `heartbeat` s of quiet."""
        event = asyncio.Event()
        waiter = (asyncio.get_running_loop(), event)
        with self._guard:
            self._waiters.add(waiter)
        try:
            while True:
                event.clear()
                fresh = self.since(after)
                for record in fresh:
                    yield record
                    after = record.seq
                if fresh:
                    continue
                try:
                    await asyncio.wait_for(event.wait(), heartbeat)
                except TimeoutError:
                    yield None
        finally:
            with self._guard:
                self._waiters.discard(waiter)


def sse_record(record: ServerLogRecord) -> bytes:
    """One record as a `log` server-sent event."""
    return f"id: {record.seq}\nevent: log\ndata: {record.model_dump_json()}\n\n".encode()


class ServerLogHandlers:
    """The endpoint reading the ring."""

    def __init__(self, ring: LogRing, heartbeat: float = 15.0) -> None:
        self.ring = ring
        self.heartbeat = heartbeat

    async def server_logs(self, request: Request) -> Response:
        """GET /v1/server/logs[?tail=N&follow=false]"""
        q = request.query_params
        tail = parse_tail(q.get("tail"))
        follow = q.get("follow", "true").lower() not in ("0", "false", "no")
        return StreamingResponse(self._stream(tail, follow), media_type=SSE,
                                 headers={"x-accel-buffering": "no"})

    async def _stream(self, tail: int, follow: bool) -> AsyncIterator[bytes]:
        # The tail and the follow start share one position, so no record is sent twice.
        first, after = self.ring.tail(tail)
        for record in first:
            yield sse_record(record)
        if not follow:
            yield b"event: end\ndata: {}\n\n"
            return
        async for fresh in self.ring.follow(after, self.heartbeat):
            yield b": keep-alive\n\n" if fresh is None else sse_record(fresh)
