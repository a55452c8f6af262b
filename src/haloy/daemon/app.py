"""haloyd's composition root: runtime, discovery, health monitor and publisher in one TaskGroup.

    docker events ──▶ Discovery ──inventory──▶ HealthMonitor (targets)
                          │                         │ transitions
                          └────────▶ Haloyd._build ◀┘
                                        │ Snapshot
                                        ▼
                                    Publisher ──file──▶ routes.json ──push──▶ haloy-proxy

Other long-lived parts (the API server, the certificate manager) join as `extra` factories:
each gets the `Haloyd` (status, deployer controls) and runs in the same TaskGroup.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from haloy.config.paths import Paths
from haloy.daemon.discovery import Discovery, Inventory
from haloy.daemon.publisher import Publisher
from haloy.daemon.route_builder import BuildResult, Controls, Extras, build_routes, host_owners
from haloy.daemon.status import DaemonStatus, build_status
from haloy.health.monitor import HealthMonitor, HealthSettings, Target
from haloy.runtime.docker import DEFAULT_NETWORK, DockerRuntime
from haloy.wire.snapshot import Snapshot

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServeSettings:
    """Everything `haloyd serve` needs, already parsed."""

    paths: Paths
    network: str = DEFAULT_NETWORK
    health: HealthSettings = field(default_factory=HealthSettings)
    extras: Extras = field(default_factory=Extras)
    docker_host: str | None = None


class Haloyd:
    """The running control plane's state; its methods are what the API and deployer call."""

    def __init__(self, settings: ServeSettings, runtime: DockerRuntime) -> None:
        self.settings = settings
        self.runtime = runtime
        self.controls = Controls()
        self.extras = settings.extras
        self.inventory = Inventory()
        # `routing` is what the last publish built: status() never runs ahead of the file.
        self.routing = build_routes((), lambda _cid: False)
        self._built = self.routing
        self.ready = asyncio.Event()
        self.monitor = HealthMonitor(settings.health, self.request_publish)
        self.discovery = Discovery(runtime, settings.network, self._on_inventory)
        self._published = asyncio.Event()
        self.publisher = Publisher(
            settings.paths.snapshot_file, settings.paths.control_socket, self._build,
            on_published=self._on_published,
        )

    def request_publish(self) -> None:
        """Republish routes soon (no-op until the first reconcile)."""
        if self.ready.is_set():
            self.publisher.request()

    def _on_inventory(self, inventory: Inventory) -> None:
        self.inventory = inventory
        # Marks for containers that no longer run have done their job.
        running = {r.container_id for r in inventory.replicas}
        c = self.controls
        if not (c.draining | c.excluded) <= running:
            self.controls = replace(
                c, draining=c.draining & running, excluded=c.excluded & running
            )
        targets = [
            Target(r.container_id, r.name, r.address, r.labels.port, r.labels.health_check_path)
            for r in inventory.replicas
        ]
        assume_up: set[str] = set()
        if not self.ready.is_set():
            assume_up = self._previously_routed(inventory)
        self.monitor.set_targets(targets, assume_up)
        self.ready.set()
        self.publisher.request()

    def _previously_routed(self, inventory: Inventory) -> set[str]:
        """Replicas the last published snapshot sent traffic to (kept up across a restart)."""
        last = self.publisher.current
        if last is None:
            return set()
        routed = {
            (b.address, b.port, b.deployment_id)
            for route in last.routes for b in route.backends if b.state == "active"
        }
        return {
            r.container_id for r in inventory.replicas
            if (r.address, r.labels.port, r.labels.deployment_id) in routed
        }

    def _build(self) -> Snapshot:
        before = self._built.problems
        self._built = self.build()
        for p in set(self._built.problems) - set(before):
            log.warning("%s: %s", p.subject, p.reason)
        return self._built.snapshot

    def build(self) -> BuildResult:
        """Routes from the current state; contested hosts stay with the app holding them."""
        return build_routes(self.inventory.replicas, self.monitor.routable, self.controls,
                            self.extras, host_owners(self.publisher.current))

    def _on_published(self) -> None:
        self.routing = self._built
        self._published.set()

    # -- what the API and the deployer call -------------------------------------------------

    def status(self) -> DaemonStatus:
        """Apps, replicas, deployment ids, health counters, problems, proxy sync."""
        current = self.publisher.current
        routing: BuildResult = self.routing
        return build_status(
            self.inventory, routing, self.monitor.states(),
            generation=current.generation if current else 0,
            config_hash=current.config_hash if current else None,
            proxy_hash=self.publisher.proxy_hash,
        )

    async def wait_for(
        self, predicate: Callable[[DaemonStatus], bool], timeout: float
    ) -> DaemonStatus:
        """Wait until predicate(status()) holds after a publish (e.g. a replica is active and
        the proxy runs the routes); TimeoutError if not."""
        async with asyncio.timeout(timeout):
            while True:
                status = self.status()
                if predicate(status):
                    return status
                self._published.clear()
                await self._published.wait()

    def set_controls(self, controls: Controls) -> None:
        """Replace the deployer's controls (draining replicas, paused apps) and republish."""
        self.controls = controls
        self.request_publish()

    def set_extras(self, extras: Extras) -> None:
        """Replace the API route / ACME backend / TLS hosts (certificate manager) and republish."""
        self.extras = extras
        self.request_publish()

    def resync(self) -> None:
        """Ask discovery for a reconcile now (e.g. right after the deployer starts a container)."""
        self.discovery.request()


Extra = Callable[[Haloyd], Coroutine[Any, Any, None]]


async def serve(settings: ServeSettings, extra: Sequence[Extra] = ()) -> None:
    """Run haloyd until SIGTERM/SIGINT; then cancel every task and close the engine client."""
    runtime = await DockerRuntime.connect(settings.docker_host)
    try:
        await runtime.ensure_network(settings.network)
        daemon = Haloyd(settings, runtime)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            async with asyncio.TaskGroup() as tg:
                tasks = [
                    tg.create_task(daemon.discovery.run(), name="discovery"),
                    tg.create_task(daemon.monitor.run(), name="health"),
                    tg.create_task(daemon.publisher.run(), name="publisher"),
                    *(tg.create_task(factory(daemon)) for factory in extra),
                ]
                log.info("haloyd serving (network %s, docker %s)", settings.network,
                         runtime.docker_host)
                await stop.wait()
                log.info("shutting down")
                for task in tasks:
                    task.cancel()
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
    finally:
        await runtime.close()
