"""GET /v1/apps/{app}/logs: container logs as server-sent events, stdout and stderr marked.

Docker multiplexes both streams into one; reading each with its own request keeps them apart.
Lines carry Docker's timestamps so a finite (non-follow) answer is merged in time order.

A follow holds engine connections until the client goes away; they are closed on every exit
path (client gone, container stopped, haloyd stopping), and they come from the engine's
stream pool, never from the one discovery and deploys use (runtime.logs).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Send

from haloy.daemon.api.app_containers import app_containers
from haloy.daemon.api.endpoints import SSE
from haloy.daemon.api.handlers import check_app
from haloy.daemon.api.numbers import whole_number
from haloy.daemon.api.problems import ApiProblem
from haloy.errors import EngineError
from haloy.runtime.docker import ContainerSummary
from haloy.runtime.engine import Engine

log = logging.getLogger(__name__)

DEFAULT_TAIL = 100
MAX_TAIL = 10000
STREAMS = ("stdout", "stderr")


@dataclass(frozen=True)
class LogLine:
    """One line of a container's output."""

    container: str
    stream: str
    time: str
    line: str

    def sse(self) -> bytes:
        """The line as one server-sent event."""
        data = json.dumps({"container": self.container, "stream": self.stream,
                           "time": self.time, "line": self.line})
        return f"event: log\ndata: {data}\n\n".encode()


def split_stamped(container: str, stream: str, chunk: str) -> list[LogLine]:
    """Lines of a `timestamps=true` log chunk: '<RFC3339> <text>' each."""
    out = []
    for raw in chunk.splitlines():
        stamp, _, text = raw.partition(" ")
        out.append(LogLine(container, stream, stamp, text))
    return out


def time_key(stamp: str) -> str:
    """A sortable form of Docker's RFC3339Nano stamp (it trims the fraction's trailing zeros)."""
    head, dot, rest = stamp.partition(".")
    if not dot:
        head, rest = stamp.removesuffix("Z"), "Z"
    digits = rest.rstrip("Z")
    return f"{head}.{digits.ljust(9, '0')}"


def parse_tail(raw: str | None) -> int:
    """The `tail` query parameter (default 100); 400 when not 0..MAX_TAIL."""
    if raw is None:
        return DEFAULT_TAIL
    tail = whole_number(raw)
    if tail is None or tail > MAX_TAIL:
        raise ApiProblem(400, f"invalid tail {raw!r}", hint=f"tail is 0 to {MAX_TAIL} lines")
    return tail


class ClosingStream(StreamingResponse):
    """A streaming answer whose body generator is closed however the answer ends.

    Starlette stops iterating when the client disconnects but leaves a body generator that
    sits at a `yield` unclosed; its `finally` (which lets go of engine streams) would then
    wait for the garbage collector.
    """

    def __init__(self, body: AsyncGenerator[bytes, None], **kwargs: Any) -> None:
        super().__init__(body, **kwargs)
        self._body = body

    async def stream_response(self, send: Send) -> None:
        """Stream the body; close its generator on every way out."""
        async with contextlib.aclosing(self._body):
            await super().stream_response(send)


class LogHandlers:
    """Reads an app's container logs from the engine."""

    def __init__(self, engine: Engine, heartbeat: float = 15.0,
                 instance: str | None = None) -> None:
        self.engine = engine
        self.instance = instance  # only this haloyd's containers
        self.heartbeat = heartbeat

    async def app_logs(self, request: Request) -> Response:
        """GET /v1/apps/{app}/logs[?tail=N&follow=false&container=ID&all=true]"""
        app = check_app(request.path_params["app"])
        q = request.query_params
        tail = parse_tail(q.get("tail"))
        follow = q.get("follow", "true").lower() not in ("0", "false", "no")
        every = q.get("all", "false").lower() in ("1", "true", "yes")
        containers = await app_containers(self.engine, app, q.get("container") or None, every,
                                          instance=self.instance)
        body = self._follow(containers, tail) if follow else self._finite(containers, tail)
        return ClosingStream(body, media_type=SSE, headers={"x-accel-buffering": "no"})

    async def _finite(
        self, containers: list[ContainerSummary], tail: int
    ) -> AsyncGenerator[bytes, None]:
        lines: list[LogLine] = []
        for c in containers:
            for stream in STREAMS:
                for chunk in await self.engine.logs.read(c.id, stream, tail):
                    lines += split_stamped(c.id[:12], stream, chunk)
        for line in sorted(lines, key=lambda ln: time_key(ln.time)):
            yield line.sse()
        yield b"event: end\ndata: {}\n\n"

    async def _follow(
        self, containers: list[ContainerSummary], tail: int
    ) -> AsyncGenerator[bytes, None]:
        queue: asyncio.Queue[LogLine | None] = asyncio.Queue(maxsize=1000)

        async def pump(c: ContainerSummary, stream: str) -> None:
            try:
                async with contextlib.aclosing(self.engine.logs.follow(c.id, stream,
                                                                       tail)) as chunks:
                    async for chunk in chunks:
                        for line in split_stamped(c.id[:12], stream, chunk):
                            await queue.put(line)
            except EngineError as exc:
                # The container went away, or the stream pool stayed full: this part ends.
                log.info("log follow of %s ended: %s", c.id[:12], exc)
            finally:
                task = asyncio.current_task()
                if task is None or not task.cancelling():  # cancelled: nobody counts ends
                    await queue.put(None)

        tasks = [asyncio.create_task(pump(c, s)) for c in containers for s in STREAMS]
        try:
            running = len(tasks)
            while running:
                try:
                    item = await asyncio.wait_for(queue.get(), self.heartbeat)
                except TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
                if item is None:
                    running -= 1
                else:
                    yield item.sse()
            yield b"event: end\ndata: {}\n\n"
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(BaseException):
                    await t
