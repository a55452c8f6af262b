"""The deployer's `RouteControl` inside `haloyd serve`: its calls become discovery controls.

Routes there come from Docker labels and the health monitor, so the deployer does not list
backends itself: `join` waits until discovery and the monitor route the (already running,
labelled) container and the proxy runs it; `set_draining`/`undrain` mark replicas draining;
`leave`/`forget` exclude replicas on their way out until Docker no longer runs them;
`set_hold` pauses the app's route. Every call returns once the proxy runs the result.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import replace

from haloy.daemon.app import Haloyd
from haloy.daemon.route_control import BackendRef
from haloy.daemon.status import DaemonStatus
from haloy.errors import RuntimeError_
from haloy.proxy.control_client import send_control
from haloy.runtime.labels import Domain

log = logging.getLogger(__name__)

# A joined container is checked at once; this bounds discovery + first check + push.
JOIN_TIMEOUT = 30.0
PUBLISH_TIMEOUT = 10.0
DRAIN_POLL_S = 0.05


class LiveRouteControl:
    """RouteControl over a running `Haloyd`."""

    def __init__(
        self, haloyd: Haloyd, join_timeout: float = JOIN_TIMEOUT,
        publish_timeout: float = PUBLISH_TIMEOUT,
    ) -> None:
        self._haloyd = haloyd
        self._join_timeout = join_timeout
        self._publish_timeout = publish_timeout

    async def join(self, app: str, domains: Sequence[Domain], backend: BackendRef) -> None:
        """Wait until the container is an active backend of `app` and the proxy runs it."""
        cid = backend.container_id

        def routed(st: DaemonStatus) -> bool:
            found = st.app(app)
            return st.proxy_in_sync and found is not None and any(
                r.container_id == cid and r.routing == "active" for r in found.replicas
            )

        self._haloyd.resync()
        try:
            await self._haloyd.wait_for(routed, self._join_timeout)
        except TimeoutError:
            found = self._haloyd.status().app(app)
            seen = [r for r in (found.replicas if found else ()) if r.container_id == cid]
            why = (
                f"health {seen[0].health}, {seen[0].routing}"
                + (f", last error {seen[0].last_error}" if seen[0].last_error else "")
                if seen else "not discovered (labels, network or state)"
            )
            raise RuntimeError_(
                f"{app}: container {cid[:12]} was not routed within {self._join_timeout:g}s "
                f"({why})",
                hint="check its labels and health check path; `haloyd` logs name the problem",
            ) from None

    async def set_draining(self, app: str, container_ids: Sequence[str]) -> None:
        """Send no new requests to these containers."""
        self._haloyd.mark_draining(container_ids, True)
        await self.wait_published()

    async def undrain(self, app: str, container_ids: Sequence[str]) -> None:
        """Make draining containers ordinary replicas again."""
        self._haloyd.mark_draining(container_ids, False)
        await self.wait_published()

    async def leave(self, app: str, container_ids: Sequence[str]) -> None:
        """Never route these containers again (they are being stopped)."""
        c = self._haloyd.controls
        excluded = c.excluded | frozenset(container_ids)
        self._haloyd.set_controls(
            replace(c, excluded=excluded, draining=c.draining - frozenset(container_ids))
        )
        await self.wait_published()

    async def forget(self, app: str) -> None:
        """Drop the app's route: exclude every replica it runs now."""
        ids = [r.container_id for r in self._haloyd.inventory.replicas if r.labels.app == app]
        await self.leave(app, ids)

    async def set_hold(self, app: str, on: bool) -> None:
        """Hold (on) or release (off) the app's requests."""
        c = self._haloyd.controls
        paused = c.paused | {app} if on else c.paused - {app}
        self._haloyd.set_controls(replace(c, paused=frozenset(paused)))
        await self.wait_published()

    async def wait_published(self) -> None:
        """Return once the proxy runs the routes as they stand now."""
        try:
            async with asyncio.timeout(self._publish_timeout):
                # Publishing here (not just requesting) guarantees the change is included.
                await self._haloyd.publish_now()
            await self._haloyd.wait_for(lambda st: st.proxy_in_sync, self._publish_timeout)
        except TimeoutError:
            raise RuntimeError_(
                f"haloy-proxy did not take the routes within {self._publish_timeout:g}s",
                hint="is haloy-proxy running? it boots from the snapshot file haloyd wrote",
            ) from None

    async def wait_drained(self, app: str, container_ids: Sequence[str], timeout: float) -> None:
        """Poll the proxy until these backends are idle, or `timeout` seconds pass."""
        wanted = set(container_ids)
        watched = {
            (r.address, r.labels.port)
            for r in self._haloyd.inventory.replicas if r.container_id in wanted
        }
        socket = self._haloyd.settings.paths.control_socket
        try:
            async with asyncio.timeout(timeout):
                while watched:
                    try:
                        status = await send_control(socket, {"op": "status"})
                    except (OSError, TimeoutError, ValueError):
                        return  # no proxy, no requests in flight through it
                    if not _busy(status, app, watched):
                        return
                    await asyncio.sleep(DRAIN_POLL_S)
        except TimeoutError:
            log.warning("%s: draining backends still busy after %.0fs", app, timeout)


def _busy(status: dict[str, object], app: str, watched: set[tuple[str, int]]) -> bool:
    routes = status.get("routes")
    for route in routes if isinstance(routes, list) else []:
        if not isinstance(route, dict) or route.get("app") != app:
            continue
        for b in route.get("backends", []):
            if (b.get("address"), b.get("port")) in watched and not b.get("idle", True):
                return True
    return False
