"""What the deployer asks of the route side: the `RouteControl` protocol, and one implementation.

The deployer never builds routes itself. It says: this healthy container joins app A's route
(`join`), these old ones stop getting new requests (`set_draining`), these leave (`leave`),
hold A's requests (`set_hold`), and waits until the proxy runs what it asked
(`wait_published`) and until draining backends are idle (`wait_drained`).

`SnapshotRouteControl` keeps each app's backends itself, writes the route snapshot file and
pushes it over the proxy's control socket (the same contract haloyd's publisher uses). It is
the standalone route side; inside `haloyd serve` these calls map onto discovery, the health
monitor and the publisher instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from haloy.errors import RuntimeError_
from haloy.proxy.control_client import send_control
from haloy.proxy.snapshot import Backend, Route, Snapshot, read_snapshot, write_snapshot
from haloy.runtime.labels import Domain

log = logging.getLogger(__name__)

CONTROL_TIMEOUT = 5.0
# How often the proxy is asked whether draining backends are idle.
DRAIN_POLL_S = 0.05


@dataclass(frozen=True)
class BackendRef:
    """A container as a backend of its app's route."""

    container_id: str
    address: str
    port: int
    deployment_id: str


class RouteControl(Protocol):
    """The route side as the deployer drives it."""

    async def join(self, app: str, domains: Sequence[Domain], backend: BackendRef) -> None:
        """List a healthy container as an active backend of `app` (on these domains)."""
        ...

    async def set_draining(self, app: str, container_ids: Sequence[str]) -> None:
        """Send no new requests to these containers; in-flight ones finish."""
        ...

    async def undrain(self, app: str, container_ids: Sequence[str]) -> None:
        """Make draining containers active backends again (a failed deploy's revert)."""
        ...

    async def leave(self, app: str, container_ids: Sequence[str]) -> None:
        """Drop these containers from the route (they are stopped or removed)."""
        ...

    async def forget(self, app: str) -> None:
        """Drop the app's route altogether (the app was stopped)."""
        ...

    async def set_hold(self, app: str, on: bool) -> None:
        """Hold (on) or release (off) the app's requests."""
        ...

    async def wait_published(self) -> None:
        """Return once the proxy runs every change asked for so far."""
        ...

    async def wait_drained(self, app: str, container_ids: Sequence[str], timeout: float) -> None:
        """Return once these backends have no open requests, or after `timeout` seconds."""
        ...

    async def finish(self, app: str) -> None:
        """The app's deployment ended (either way): route it by the route side's own rules."""
        ...


@dataclass
class _AppRoute:
    domains: tuple[Domain, ...] = ()
    backends: dict[str, tuple[BackendRef, str]] = field(default_factory=dict)  # cid -> (b, state)
    held: bool = False


class SnapshotRouteControl:
    """Routes kept here, published as a snapshot file + a push to the proxy's control socket."""

    def __init__(
        self, snapshot_file: Path, control_socket: Path, *, require_proxy: bool = True
    ) -> None:
        self._file = snapshot_file
        self._socket = control_socket
        self._require_proxy = require_proxy
        self._apps: dict[str, _AppRoute] = {}
        self._lock = asyncio.Lock()
        previous = read_snapshot(snapshot_file)
        self._generation = previous.generation if previous else 0
        self.published: Snapshot | None = None

    async def join(self, app: str, domains: Sequence[Domain], backend: BackendRef) -> None:
        """List a healthy container as an active backend."""
        route = self._apps.setdefault(app, _AppRoute())
        route.domains = tuple(domains)
        route.backends[backend.container_id] = (backend, "active")
        await self._publish()

    async def set_draining(self, app: str, container_ids: Sequence[str]) -> None:
        """Mark backends draining (or active again: see `undrain`)."""
        self._set_state(app, container_ids, "draining")
        await self._publish()

    async def undrain(self, app: str, container_ids: Sequence[str]) -> None:
        """Make draining backends active again."""
        self._set_state(app, container_ids, "active")
        await self._publish()

    async def leave(self, app: str, container_ids: Sequence[str]) -> None:
        """Drop backends from the route."""
        route = self._apps.get(app)
        if route is not None:
            for cid in container_ids:
                route.backends.pop(cid, None)
        await self._publish()

    async def set_hold(self, app: str, on: bool) -> None:
        """Hold or release the app's requests."""
        self._apps.setdefault(app, _AppRoute()).held = on
        await self._publish()

    async def forget(self, app: str) -> None:
        """Drop the app's route altogether (the app was stopped)."""
        self._apps.pop(app, None)
        await self._publish()

    async def wait_published(self) -> None:
        """Every call publishes before it returns; nothing is left to wait for."""

    async def finish(self, app: str) -> None:
        """The routes kept here are already the deployer's; nothing to hand back."""

    async def wait_drained(self, app: str, container_ids: Sequence[str], timeout: float) -> None:
        """Poll the proxy's status until these backends are idle (bounded by `timeout`)."""
        route = self._apps.get(app)
        if route is None:
            return
        watched = {
            (b.address, b.port) for cid, (b, _) in route.backends.items() if cid in container_ids
        }
        await wait_idle(self._socket, app, watched, timeout)

    def _set_state(self, app: str, container_ids: Sequence[str], state: str) -> None:
        route = self._apps.get(app)
        if route is None:
            return
        for cid in container_ids:
            if cid in route.backends:
                route.backends[cid] = (route.backends[cid][0], state)

    def snapshot(self) -> Snapshot:
        """The routes as they stand (generation 0)."""
        routes = []
        for app in sorted(self._apps):
            r = self._apps[app]
            backends = tuple(
                Backend(address=b.address, port=b.port, deployment_id=b.deployment_id,
                        state="active" if state == "active" else "draining")
                for b, state in sorted(r.backends.values(), key=lambda v: v[0].container_id)
            )
            for d in r.domains:
                routes.append(
                    Route(app=app, domain=d.name, aliases=d.aliases, backends=backends,
                          paused=r.held, hold_when_empty=True)
                )
        return Snapshot(routes=tuple(routes))

    async def _publish(self) -> None:
        async with self._lock:
            self._generation += 1
            snap = self.snapshot().model_copy(update={"generation": self._generation})
            await asyncio.to_thread(write_snapshot, self._file, snap)
            request = {"op": "put_snapshot", "snapshot": snap.model_dump(mode="json")}
            reply = await self._send(request)
            if reply is not None and not reply.get("ok"):
                raise RuntimeError_(
                    f"the proxy rejected routes generation {snap.generation}: {reply.get('error')}",
                    hint="see haloy-proxy's log; the previous routes stay in force",
                )
            self.published = snap

    async def _send(self, request: dict[str, Any]) -> dict[str, Any] | None:
        try:
            return await send_control(self._socket, request, CONTROL_TIMEOUT)
        except (OSError, TimeoutError, ValueError) as exc:
            if self._require_proxy:
                raise RuntimeError_(
                    f"haloy-proxy is not reachable on {self._socket}: {exc}",
                    hint="start haloy-proxy (it boots from the snapshot file haloyd wrote)",
                ) from exc
            return None


async def wait_idle(
    control_socket: Path, app: str, watched: set[tuple[str, int]], timeout: float
) -> None:
    """Poll the proxy until none of `watched` (address, port) has open requests, or timeout."""
    if not watched:
        return
    try:
        async with asyncio.timeout(timeout):
            while True:
                try:
                    status = await send_control(control_socket, {"op": "status"}, CONTROL_TIMEOUT)
                except (OSError, ValueError):
                    return  # no proxy, nothing in flight through it
                if not _busy(status, app, watched):
                    return
                await asyncio.sleep(DRAIN_POLL_S)
    except TimeoutError:
        log.warning("%s: draining backends still busy after %.0fs", app, timeout)


def _busy(status: dict[str, Any], app: str, watched: set[tuple[str, int]]) -> bool:
    for route in status.get("routes", []):
        if route.get("app") != app:
            continue
        for b in route.get("backends", []):
            if (b.get("address"), b.get("port")) in watched and not b.get("idle", True):
                return True
    return False

