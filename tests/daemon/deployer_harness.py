"""A real deployer for tests, wired as `haloyd serve` wires it: real dockerd, a real SQLite
store, and its routes from a running `Haloyd` (discovery, health monitor, publisher) pushed to a
real haloy-proxy over its control socket.

    async with deployer_harness(tmp_path, network, cleanup, proxy) as h:
        dep = await h.deploy(replicas=3)          # waits for the end; returns the history row
        async with h.load() as load: ...          # bounded load loop through the proxy
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from haloy.daemon.app import Haloyd, ServeSettings
from haloy.daemon.deploy_spec import DeploySpec
from haloy.daemon.deployer import Deployer
from haloy.daemon.events import EventHub
from haloy.daemon.route_control import RouteControl
from haloy.health.monitor import HealthSettings
from haloy.runtime.docker import DockerRuntime
from haloy.runtime.labels import Domain
from haloy.store import Deployment, DeploymentStore
from haloy.wire.api import DeploymentEvent
from tests.fixtures.docker import TEST_IMAGE, TEST_LABEL, docker_cli
from tests.fixtures.proxy import ProxyProcess

DOMAIN = "web.test"
HEALTH = "/cgi-bin/health"
# Load loops stop after this many requests even if the test forgets to stop them.
MAX_REQUESTS = 20_000
LOAD_WORKERS = 3
# busybox httpd runs as PID 1 and ignores SIGTERM; past draining nothing is lost by a quick kill.
STOP_GRACE_S = 1
# Checks every second: a replica that fails is out of rotation within seconds, not minutes.
HEALTH_SETTINGS = HealthSettings(interval=1.0)
# Discovery's first reconcile lists the engine once; far more means dockerd is stuck.
READY_TIMEOUT_S = 30.0


@dataclass
class Load:
    """Outcome of a load loop: answers per body, and every failure."""

    bodies: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    requests: int = 0
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    served: asyncio.Event = field(default_factory=asyncio.Event)

    def versions(self) -> set[str]:
        return {b.split()[-1] for b in self.bodies}


@dataclass
class Harness:
    """What a deployer test drives and inspects."""

    app: str
    network: str
    cleanup: str
    deployer: Deployer
    store: DeploymentStore
    events: EventHub
    proxy: ProxyProcess
    runtime: DockerRuntime
    haloyd: Haloyd

    def spec(self, version: str = "v1", **kw: Any) -> DeploySpec:
        base: dict[str, Any] = {
            "app": self.app,
            "image": f"{TEST_IMAGE}:{version}",
            "domains": (Domain(DOMAIN),),
            "health_check_path": HEALTH,
            "deadline_s": 60.0,
        }
        return DeploySpec(**{**base, **kw})

    async def deploy(self, version: str = "v1", **kw: Any) -> Deployment:
        """Submit a deploy and wait for its end."""
        dep = await self.deployer.submit(self.spec(version, **kw))
        return await self.deployer.wait(dep.id)

    def stream(self, deployment_id: str) -> list[DeploymentEvent]:
        log = self.events.get(deployment_id)
        assert log is not None
        return log.since(0)

    def containers(self, *filters: str) -> list[str]:
        """Names of the app's containers (all states) matching extra `docker ps` filters."""
        args = ["ps", "-a", "--format", "{{.Names}}", "--filter",
                f"label=dev.haloy.appName={self.app}"]
        for f in filters:
            args += ["--filter", f]
        return sorted(docker_cli(*args).split())

    async def get(self, client: httpx.AsyncClient) -> str:
        resp = await client.get("/", headers={"host": DOMAIN})
        if resp.status_code != 200:
            raise AssertionError(f"HTTP {resp.status_code}: {resp.text[:200]}")
        return resp.text.strip()

    @contextlib.asynccontextmanager
    async def load(self) -> AsyncIterator[Load]:
        """Requests through the proxy until the block ends (bounded by MAX_REQUESTS)."""
        load = Load()
        base = f"http://127.0.0.1:{self.proxy.http_port}"

        async def worker() -> None:
            async with httpx.AsyncClient(base_url=base, timeout=35.0) as client:
                while not load.stop.is_set() and load.requests < MAX_REQUESTS:
                    load.requests += 1
                    try:
                        body = await self.get(client)
                    except (AssertionError, httpx.HTTPError) as exc:
                        load.failures.append(f"{type(exc).__name__}: {exc}")
                        continue
                    load.bodies[body] = load.bodies.get(body, 0) + 1
                    load.served.set()

        async with asyncio.TaskGroup() as tg:
            for _ in range(LOAD_WORKERS):
                tg.create_task(worker())
            try:
                await asyncio.wait_for(load.served.wait(), 20)
                yield load
            finally:
                load.stop.set()


@contextlib.asynccontextmanager
async def deployer_harness(
    tmp_path: Path, network: str, cleanup: str, proxy: ProxyProcess
) -> AsyncIterator[Harness]:
    """A deployer wired to real peers; its image tags are removed afterwards."""
    app = f"t{uuid.uuid4().hex[:8]}"
    runtime = await DockerRuntime.connect()
    store = await DeploymentStore.open(tmp_path / "db" / "haloy.db")
    events = EventHub()
    haloyd = Haloyd(ServeSettings(proxy.paths, network, HEALTH_SETTINGS), runtime)
    deployer = Deployer(runtime, RouteControl(haloyd), store, events, network=network,
                        drain_grace_s=5.0, stop_grace_s=STOP_GRACE_S,
                        extra_labels={TEST_LABEL: cleanup})
    # What `haloyd serve` runs beside the API (daemon.app.serve).
    tasks = [asyncio.create_task(c) for c in (
        haloyd.discovery.run(), haloyd.monitor.run(), haloyd.publisher.run()
    )]
    try:
        async with asyncio.timeout(READY_TIMEOUT_S):
            await haloyd.ready.wait()
        yield Harness(app, network, cleanup, deployer, store, events, proxy, runtime, haloyd)
    finally:
        await deployer.close()
        for task in tasks:
            task.cancel()
        ended = await asyncio.gather(*tasks, return_exceptions=True)
        await store.close()
        await runtime.close()
        tags = docker_cli("image", "ls", "--format", "{{.Repository}}:{{.Tag}}", app,
                          check=False).split()
        ids = docker_cli("ps", "-aq", "--filter", f"label={TEST_LABEL}={cleanup}",
                         check=False).split()
        if ids:
            docker_cli("rm", "-f", *ids, check=False)
        if tags:
            docker_cli("rmi", *tags, check=False)
    crashed = [e for e in ended if not isinstance(e, asyncio.CancelledError)]
    if crashed:
        raise AssertionError(f"haloyd's tasks crashed: {crashed!r}")
