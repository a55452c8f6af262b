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
from dataclasses import dataclass, field
from typing import Any

import aiodocker
from starlette.requests import Request
from starlette.responses import Response

from haloy.daemon.api.app_containers import app_containers
from haloy.daemon.api.handlers import check_app, model_response
from haloy.daemon.api.problems import ApiProblem
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

    def __init__(self, client: aiodocker.Docker, max_output: int = DEFAULT_MAX_OUTPUT,
                 instance: str | None = None) -> None:
        self.client = client
        self.instance = instance  # only this haloyd's containers
        self.max_output = max_output

    async def app_exec(self, request: Request) -> Response:
        """POST /v1/apps/{app}/exec"""
        app = check_app(request.path_params["app"])
        body = parse_request(await request.body())
        containers = await app_containers(self.client, app, body.container, body.all_containers,
                                          running=True, instance=self.instance)
        # Create every exec first: a container that cannot take one (409) fails the request
        # before any command started anywhere.
        marker = f"{MARKER}={uuid.uuid4().hex}"
        execs = await all_or_cancel([_create(c, body.argv, marker) for c in containers])
        results = await all_or_cancel([self._run(c, e, body.timeout, marker)
                              for c, e in zip(containers, execs, strict=True)])
        return model_response(ExecResults(results=results))

    async def _run(self, container: Any, execution: Any, timeout: float,
                   marker: str) -> ExecResult:
        out, err = Capped(self.max_output), Capped(self.max_output)
        timed_out = killed = False
        try:
            async with execution.start(detach=False) as stream:
                try:
                    async with asyncio.timeout(timeout):
                        await _drain(stream, out, err)
                except TimeoutError:
                    timed_out = True
                    killed = await _kill(container, execution, marker)
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(KILL_WAIT_S):
                            await _drain(stream, out, err)
        except aiodocker.DockerError as exc:
            raise _cannot_exec(container, exc) from exc
        except asyncio.CancelledError:  # another container failed: leave nothing running
            await asyncio.shield(_kill(container, execution, marker))
            raise
        info = await _finished(execution) if not timed_out else {}
        return ExecResult(
            container_id=container.id[:12], exit_code=info.get("ExitCode"),
            stdout=out.text(), stderr=err.text(), timed_out=timed_out, killed=killed,
            truncated=out.truncated or err.truncated,
        )


async def all_or_cancel(coros: list[Any]) -> list[Any]:
    """Await all; on the first error cancel and await the others, then raise that error."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(c) for c in coros]
    except BaseExceptionGroup as errors:
        raise errors.exceptions[0] from None
    return [t.result() for t in tasks]


def _cannot_exec(container: Any, exc: aiodocker.DockerError) -> ApiProblem:
    return ApiProblem(409, f"cannot exec in container {container.id[:12]}: {exc.message}",
                      hint="is the container running?")


async def _create(container: Any, argv: list[str], marker: str) -> Any:
    key, _, value = marker.partition("=")
    try:
        return await container.exec(argv, stdout=True, stderr=True, tty=False,
                                    environment={key: value})
    except aiodocker.DockerError as exc:
        raise _cannot_exec(container, exc) from exc


async def _finished(execution: Any) -> dict[str, Any]:
    """The exec's inspect once it stopped running (the engine may lag the stream's end)."""
    info: dict[str, Any] = await execution.inspect()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(EXIT_CODE_WAIT_S):
            while info.get("Running") or info.get("ExitCode") is None:
                await asyncio.sleep(POLL_S)
                info = await execution.inspect()
    return info if not info.get("Running") else {}


async def _drain(stream: Any, out: Capped, err: Capped) -> None:
    while (msg := await stream.read_out()) is not None:
        (err if msg.stream == 2 else out).add(msg.data)


async def _kill(container: Any, execution: Any, marker: str) -> bool:
    """SIGKILL the command and its children inside the container; True if it is gone."""
    # Swept even when the command itself ended: a child may still hold its output open.
    with contextlib.suppress(aiodocker.DockerError, TimeoutError):
        async with asyncio.timeout(KILL_WAIT_S):
            killer = await container.exec(["sh", "-c", KILL_SCRIPT, "sh", marker],
                                          stdout=True, stderr=True, tty=False, user="0:0")
            async with killer.start(detach=False) as stream:
                while await stream.read_out() is not None:
                    pass
            swept = (await _finished(killer)).get("ExitCode") == 0
            return swept and (await _finished(execution)).get("Running") is False
    return False
