"""What the deployer asks of the route side, mapped onto the running `Haloyd`'s routes.

The deployer never builds routes itself: haloyd rebuilds them from Docker labels + health
(route_builder) and the publisher pushes them to haloy-proxy. `RouteControl` only adds the
deployer's controls (`route_builder.Controls`) and waits for their result:

    join        resync discovery; wait until the health monitor finds the container up, then
                pin it into the app's active set (old and new serve side by side)
    set_draining / undrain   the draining set
    leave       unpinned and excluded: never routed again (haloyd drops the mark once
                discovery no longer sees the container)
    set_hold    the app's `paused` control; its published routes are kept while it has no
                running container (a replace deploy), so requests wait instead of 404
    finish      unpin: the newest healthy deployment takes the route, as without a deploy
    forget      the app was stopped: release hold and pins; its containers leave with discovery
    wait_published   until the proxy runs the snapshot built from the current state
    wait_drained     until the proxy reports the draining backends idle (or a timeout)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from haloy.daemon.app import Haloyd
from haloy.errors import RuntimeError_
from haloy.runtime.labels import Domain
from haloy.wire.control import CONTROL_TIMEOUT, send_control

log = logging.getLogger(__name__)

# How often haloyd's state is compared with what the deployer waits for.
POLL_S = 0.02
# How often the proxy is asked whether draining backends are idle.
DRAIN_POLL_S = 0.05
# Publishing follows discovery (150 ms window) and one push; far more means haloyd is stuck.
PUBLISH_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class BackendRef:
    """A container as a backend of its app's route."""

    container_id: str
    address: str
    port: int
    deployment_id: str


class RouteControl:
    """The deployer's hold on a running `Haloyd`'s routes."""

    def __init__(self, haloyd: Haloyd, timeout: float = PUBLISH_TIMEOUT_S) -> None:
        self.haloyd = haloyd
        self.timeout = timeout

    async def _until(self, what: str, done: Callable[[], bool]) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                while not done():
                    await asyncio.sleep(POLL_S)
        except TimeoutError:
            raise RuntimeError_(
                f"haloyd did not {what} within {self.timeout:g}s",
                hint="check haloyd's log: is dockerd answering and haloy-proxy running?",
            ) from None

    def _update(self, app: str, *, pin: Sequence[str] = (), unpin: Sequence[str] = (),
                exclude: Sequence[str] = (), drain: Sequence[str] = (),
                undrain: Sequence[str] = ()) -> None:
        c = self.haloyd.controls
        pinned = dict(c.pinned)
        if pin or unpin:
            pinned[app] = (pinned.get(app, frozenset()) | set(pin)) - set(unpin)
        self.haloyd.set_controls(replace(
            c,
            pinned=pinned,
            excluded=c.excluded | set(exclude),
            draining=(c.draining | set(drain)) - set(undrain),
        ))

    async def join(self, app: str, domains: Sequence[Domain], backend: BackendRef) -> None:
        """Wait until the container is discovered and up, then route it next to the others."""
        self.haloyd.resync()
        cid = backend.container_id

        def known_and_up() -> bool:
            listed = any(r.container_id == cid for r in self.haloyd.inventory.replicas)
            state = self.haloyd.monitor.states().get(cid)
            if listed and state is not None and state.status == "down":
                raise RuntimeError_(
                    f"haloyd's health monitor finds container {cid[:12]} down "
                    f"({state.last_error})",
                    hint="check the app's health check path and port",
                )
            return listed and self.haloyd.monitor.routable(cid)

        await self._until(f"see container {cid[:12]} healthy", known_and_up)
        self._update(app, pin=[cid], undrain=[cid])
        await self.wait_published()

    async def set_draining(self, app: str, container_ids: Sequence[str]) -> None:
        """No new requests for these containers; in-flight ones finish."""
        self._update(app, drain=container_ids)

    async def undrain(self, app: str, container_ids: Sequence[str]) -> None:
        """These containers serve again (a failed deploy's revert)."""
        self._update(app, undrain=container_ids)

    async def leave(self, app: str, container_ids: Sequence[str]) -> None:
        """They are about to stop or go away: never route them again."""
        self._update(app, unpin=container_ids, exclude=container_ids)

    async def set_hold(self, app: str, on: bool) -> None:
        """Hold (or release) the app's requests in the proxy."""
        controls = self.haloyd.controls
        paused = controls.paused | {app} if on else controls.paused - {app}
        held = {k: v for k, v in controls.held_routes.items() if k != app}
        current = self.haloyd.publisher.current
        if on and current is not None:
            # Kept while the app has no running container (replace: old stopped, new not up).
            held[app] = tuple(r for r in current.routes if r.app == app)
        self.haloyd.set_controls(
            replace(controls, paused=frozenset(paused), held_routes=held))

    async def finish(self, app: str) -> None:
        """The deployment ended: route the app by discovery's own rules again."""
        controls = self.haloyd.controls
        if app in controls.pinned:
            pinned = {k: v for k, v in controls.pinned.items() if k != app}
            self.haloyd.set_controls(replace(controls, pinned=pinned))
        await self.wait_published()

    async def forget(self, app: str) -> None:
        """The app was stopped: release its hold and pins; its containers leave with discovery."""
        await self.set_hold(app, False)
        await self.finish(app)
        self.haloyd.resync()

    async def wait_published(self) -> None:
        """Until the proxy runs the snapshot built from haloyd's current state."""
        h = self.haloyd

        def in_force() -> bool:
            current = h.publisher.current
            if current is None or h.publisher.proxy_hash != current.config_hash:
                return False
            return current.model_copy(update={"generation": 0}) == h.build().snapshot

        h.request_publish()
        await self._until("publish the routes to haloy-proxy", in_force)

    async def wait_drained(self, app: str, container_ids: Sequence[str], timeout: float) -> None:
        """Until the proxy reports these backends idle, or `timeout` seconds pass."""
        ids = set(container_ids)
        watched = {
            (r.address, r.labels.port) for r in self.haloyd.inventory.replicas
            if r.container_id in ids
        }
        if not watched:
            return
        socket = self.haloyd.settings.paths.control_socket
        try:
            async with asyncio.timeout(timeout):
                while True:
                    try:
                        status = await send_control(socket, {"op": "status"}, CONTROL_TIMEOUT)
                    except (OSError, ValueError):
                        return  # no proxy, nothing in flight through it
                    if not _busy(status, app, watched):
                        return
                    await asyncio.sleep(DRAIN_POLL_S)
        except TimeoutError:
            log.warning("%s: draining backends still busy after %.0fs", app, timeout)


def _busy(status: dict[str, Any], app: str, watched: set[tuple[str, int]]) -> bool:
    """True while the proxy's status shows an open request on one of `watched` (address, port)."""
    for route in status.get("routes", []):
        if route.get("app") != app:
            continue
        for b in route.get("backends", []):
            if (b.get("address"), b.get("port")) in watched and not b.get("idle", True):
                return True
    return False
