"""The deploy health gate: a container is ready after its first good check plus `min_ready`.

First successful HTTP check of container-IP:port+path, then `min_ready_seconds` with the
container still running. A container that exits, or a gate that outlasts the deploy deadline
(the caller's timeout), fails the deploy.
"""

from __future__ import annotations

import asyncio

from haloy.errors import RuntimeError_
from haloy.health.probe import probe
from haloy.runtime.containers import Containers, ContainerState

# Between failed checks: fast enough that a busybox app is routed within a fraction of a second.
RETRY_S = 0.1
PROBE_TIMEOUT_S = 5.0


class GateFailed(RuntimeError_):
    """A container did not become ready; `container_id` names it (for its logs)."""

    def __init__(self, message: str, container_id: str) -> None:
        super().__init__(message, hint="see the container's last log lines in the failure event")
        self.container_id = container_id


async def _running(containers: Containers, cid: str) -> ContainerState:
    state = await containers.inspect(cid)
    if state is None:
        raise GateFailed(f"container {cid[:12]} disappeared", cid)
    if not state.running:
        raise GateFailed(f"container {cid[:12]} exited with code {state.exit_code}", cid)
    return state


async def wait_ready(
    containers: Containers, cid: str, port: int, path: str, min_ready_s: float, deadline: float
) -> ContainerState:
    """Wait until `cid` passes one check and then stays up `min_ready_s`; return its state.

    `deadline` is the deploy's deadline in loop time; missing it fails with the last error.
    """
    last_error = "no check finished yet"
    try:
        async with asyncio.timeout_at(deadline):
            while True:
                state = await _running(containers, cid)
                if state.address:
                    result = await probe(state.address, port, path, PROBE_TIMEOUT_S)
                    if result.ok:
                        break
                    last_error = result.error or f"HTTP {result.status}"
                else:
                    last_error = "no address on the app network yet"
                await asyncio.sleep(RETRY_S)
            if min_ready_s > 0:
                await asyncio.sleep(min_ready_s)
            return await _running(containers, cid)
    except TimeoutError:
        raise GateFailed(
            f"container {cid[:12]} did not pass its health check {path} on port {port} "
            f"before the deploy deadline: {last_error}",
            cid,
        ) from None
