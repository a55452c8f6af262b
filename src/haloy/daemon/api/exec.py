"""POST /v1/apps/{app}/exec: run a command in an app's containers, non-interactively.

Output is read to the end even past the cap (a blocked pipe would stall the command) but only
the first `max_output` bytes of each stream are kept.

On timeout the command is killed through the engine, never by host PID (haloyd has no
capabilities and cannot even see the container's processes; a PID may also be reused): each
command runs with a unique `HALOY_EXEC_ID` in its environment, which its children inherit,
and a second exec (as uid 0, in the container) SIGKILLs every process carrying it. That needs
`sh`, `grep` and `kill` in the image; where the kill cannot be done the result says
`killed: false` instead of claiming it.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response

from haloy.daemon.api.app_containers import app_containers
from haloy.daemon.api.engine_problems import exec_refused
from haloy.daemon.api.handlers import check_app, model_response
from haloy.daemon.api.problems import ApiProblem
from haloy.errors import EngineError
from haloy.runtime.engine import Engine, RunningExec
from haloy.runtime.exec import STDERR, ExecOutput, ExecState
from haloy.wire.api import ExecRequest, ExecResult, ExecResults

# Enough for a migration's log or a config dump; JSON answers must stay small.
DEFAULT_MAX_OUTPUT = 1024 * 1024
# After a kill the stream ends at once; bound the wait in case the engine lags.
KILL_WAIT_S = 5.0
# The exit code can lag the end of the output by a moment; poll this long for it.
EXIT_CODE_WAIT_S = 2.0
POLL_S = 0.05
MARKER = "HALOY_EXEC_ID"
# $1 is the marker: every process (the command and its children) whose environment has it.
KILL_SCRIPT = ('for d in /proc/[0-9]*; do grep -q "$1" "$d/environ" 2>/dev/null '
               '&& kill -9 "${d#/proc/}" 2>/dev/null; done; exit 0')


@dataclass
class Capped:
    """Bytes of one stream, kept up to a cap."""

    cap: int
    data: bytearray = field(default_factory=bytearray)
    truncated: bool = False

    def add(self, chunk: bytes) -> None:
        """Keep what fits under the cap; remember that something was cut."""
        room = self.cap - len(self.data)
        if len(chunk) > room:
            self.truncated = True
        self.data += chunk[: max(room, 0)]

    def text(self) -> str:
        """The kept bytes as text (invalid UTF-8 replaced)."""
        return self.data.decode("utf-8", "replace")


def parse_request(raw: bytes) -> ExecRequest:
    """The request body; 400 for an empty argv (422 for other schema errors)."""
    body = ExecRequest.model_validate_json(raw)
    if not body.argv or not body.argv[0]:
        raise ApiProblem(400, "argv is empty", hint="give the command and its arguments, "
                         "e.g. {\"argv\": [\"ls\", \"-l\"]} (haloy exec -- ls -l)")
    return body


class ExecHandlers:
    """Runs commands in an app's running containers through the engine."""

    def __init__(self, engine: Engine, max_output: int = DEFAULT_MAX_OUTPUT,
                 instance: str | None = None) -> None:
        self.engine = engine
        self.instance = instance  # only this haloyd's containers
        self.max_output = max_output

    async def app_exec(self, request: Request) -> Response:
        """POST /v1/apps/{app}/exec"""
        app = check_app(request.path_params["app"])
        body = parse_request(await request.body())
        containers = await app_containers(self.engine, app, body.container,
                                          body.all_containers, running=True,
                                          instance=self.instance)
        # Create every exec first: a container that cannot take one (409) fails the request
        # before any command started anywhere.
        marker = f"{MARKER}={uuid.uuid4().hex}"
        execs = await all_or_cancel([self._create(c.id, body.argv, marker) for c in containers])
        results = await all_or_cancel([self._run(e, body.timeout, marker) for e in execs])
        return model_response(ExecResults(results=results))

    async def _create(self, container_id: str, argv: list[str], marker: str) -> RunningExec:
        key, _, value = marker.partition("=")
        try:
            return await self.engine.execs.create(container_id, argv, env={key: value})
        except EngineError as exc:
            raise exec_refused(container_id, exc) from exc

    async def _run(self, execution: RunningExec, timeout: float, marker: str) -> ExecResult:
        out, err = Capped(self.max_output), Capped(self.max_output)
        timed_out = killed = False
        try:
            async with execution.output() as stream:
                try:
                    async with asyncio.timeout(timeout):
                        await _drain(stream, out, err)
                except TimeoutError:
                    timed_out = True
                    killed = await self._kill(execution, marker)
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(KILL_WAIT_S):
                            await _drain(stream, out, err)
        except EngineError as exc:
            raise exec_refused(execution.container_id, exc) from exc
        except asyncio.CancelledError:  # another container failed: leave nothing running
            await asyncio.shield(self._kill(execution, marker))
            raise
        state = await _finished(execution) if not timed_out else None
        return ExecResult(
            container_id=execution.container_id[:12],
            exit_code=state.exit_code if state is not None else None,
            stdout=out.text(), stderr=err.text(), timed_out=timed_out, killed=killed,
            truncated=out.truncated or err.truncated,
        )

    async def _kill(self, execution: RunningExec, marker: str) -> bool:
        """SIGKILL the command and its children inside the container; True if it is gone."""
        # Swept even when the command itself ended: a child may still hold its output open.
        with contextlib.suppress(EngineError, TimeoutError):
            async with asyncio.timeout(KILL_WAIT_S):
                killer = await self.engine.execs.create(
                    execution.container_id, ["sh", "-c", KILL_SCRIPT, "sh", marker], user="0:0")
                async with killer.output() as stream:
                    while await stream.read() is not None:
                        pass
                swept = (await _finished(killer)) == ExecState(running=False, exit_code=0)
                return swept and (await _finished(execution)) is not None
        return False


T = TypeVar("T")


async def all_or_cancel(coros: list[Coroutine[Any, Any, T]]) -> list[T]:
    """Await all; on the first error cancel and await the others, then raise that error."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(c) for c in coros]
    except BaseExceptionGroup as errors:
        raise errors.exceptions[0] from None
    return [t.result() for t in tasks]


async def _finished(execution: RunningExec) -> ExecState | None:
    """The exec's state once it stopped running (the engine may lag the stream's end); None
    while it still runs."""
    state = await execution.state()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(EXIT_CODE_WAIT_S):
            while state.running or state.exit_code is None:
                await asyncio.sleep(POLL_S)
                state = await execution.state()
    return state if not state.running else None


async def _drain(stream: ExecOutput, out: Capped, err: Capped) -> None:
    while (chunk := await stream.read()) is not None:
        (err if chunk[0] == STDERR else out).add(chunk[1])
