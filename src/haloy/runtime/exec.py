"""Commands run in a container through the engine (`docker exec`), output read attached.

Execs use the stream pool: a command's output holds its engine connection for as long as
the command runs.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass

import aiodocker
from aiodocker.stream import Stream

from haloy.runtime.engine_calls import CALL_TIMEOUT, translate_errors

STDOUT = 1
STDERR = 2


@dataclass(frozen=True)
class ExecState:
    """What the engine says of an exec: still running, and its exit code once known."""

    running: bool
    exit_code: int | None


class ExecOutput:
    """The attached output of a started exec."""

    def __init__(self, stream: Stream, container_id: str) -> None:
        self._stream = stream
        self._container = container_id[:12]

    async def read(self) -> tuple[int, bytes] | None:
        """The next chunk as (STDOUT or STDERR, bytes); None once the command's output ended."""
        with translate_errors(f"reading exec output in {self._container}"):
            msg = await self._stream.read_out()
        return None if msg is None else (int(msg.stream), bytes(msg.data))


class Exec:
    """One command created in a container, not yet (or already) started."""

    def __init__(self, raw: aiodocker.execs.Exec, container_id: str) -> None:
        self._raw = raw
        self.container_id = container_id

    @contextlib.asynccontextmanager
    async def output(self) -> AsyncIterator[ExecOutput]:
        """Start the command attached; its output until the block ends (then closed)."""
        stream = self._raw.start(detach=False)
        try:
            with translate_errors(f"starting an exec in {self.container_id[:12]}"):
                await stream.__aenter__()
            yield ExecOutput(stream, self.container_id)
        finally:
            await stream.close()

    async def state(self) -> ExecState:
        """Whether it still runs, and its exit code."""
        with translate_errors(f"inspecting an exec in {self.container_id[:12]}"):
            async with asyncio.timeout(CALL_TIMEOUT):
                info = await self._raw.inspect()
        code = info.get("ExitCode")
        return ExecState(bool(info.get("Running")), None if code is None else int(code))


class Execs:
    """Creates execs on one engine."""

    def __init__(self, streams: aiodocker.Docker) -> None:
        self.streams = streams

    async def create(
        self, container_id: str, argv: Sequence[str], *, env: Mapping[str, str] | None = None,
        user: str = "",
    ) -> Exec:
        """A command (stdout and stderr attached, no TTY) ready to start in the container;
        `user` "" is the image's user."""
        with translate_errors(f"creating an exec in {container_id[:12]}"):
            async with asyncio.timeout(CALL_TIMEOUT):
                raw = await self.streams.containers.container(container_id).exec(
                    list(argv), stdout=True, stderr=True, tty=False,
                    environment=dict(env or {}), user=user)
        return Exec(raw, container_id)
