"""`RouteControl` inside `haloyd serve`: the deployer's asks mapped onto discovery's routes.

There the routes are rebuilt from Docker labels + health (route_builder), so this adapter
only adds the deployer's controls and waits for the results:

    join        resync discovery; wait until the health monitor finds the container up, then
                pin it into the app's active set (old and new serve side by side)
    set_draining / undrain   the draining set
    leave       unpinned and excluded: never routed again (haloyd drops the mark once
                discovery no longer sees the container)
    set_hold    the app's `paused` control
    finish      unpin: the newest healthy deployment takes the route, as without a deploy
    wait_published   until the proxy runs the snapshot built from the current state
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import replace

from haloy.daemon.app import Haloyd
from haloy.daemon.route_control import BackendRef, wait_idle
from haloy.errors import RuntimeError_
from haloy.runtime.labels import Domain

# How often haloyd's state is compared with what the deployer waits for.
POLL_S = 0.02
# Publishing follows discovery (150 ms window) and one push; far more means haloyd is stuck.
PUBLISH_TIMEOUT_S = 30.0


class HaloydRouteControl:
    """The deployer's RouteControl over a running `Haloyd`."""

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
        """No new requests for these containers."""
        self._update(app, drain=container_ids)

    async def undrain(self, app: str, container_ids: Sequence[str]) -> None:
        """These containers serve again."""
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
        """Until the proxy reports these backends idle (bounded by `timeout`)."""
        ids = set(container_ids)
        watched = {
            (r.address, r.labels.port) for r in self.haloyd.inventory.replicas
            if r.container_id in ids
        }
        await wait_idle(self.haloyd.settings.paths.control_socket, app, watched, timeout)
