"""LiveRouteControl: the deployer's RouteControl calls inside haloyd, against dockerd and the
real haloy-proxy (a replace deploy: join new, drain old, leave, hold, forget)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from haloy.config.paths import Paths
from haloy.daemon.app import Haloyd, ServeSettings
from haloy.daemon.live_routes import LiveRouteControl
from haloy.daemon.route_control import BackendRef
from haloy.errors import RuntimeError_
from haloy.health.monitor import HealthSettings
from haloy.proxy.snapshot import read_snapshot
from haloy.runtime.docker import DockerRuntime
from haloy.runtime.labels import Domain
from tests.fixtures.docker import container_ip, docker_cli, run_app
from tests.fixtures.proxy import ProxyProcess

pytestmark = pytest.mark.docker


@asynccontextmanager
async def running(paths: Paths, network: str) -> AsyncIterator[Haloyd]:
    runtime = await DockerRuntime.connect()
    health = HealthSettings(interval=0.5, fall=2, rise=2, timeout=1.0)
    daemon = Haloyd(ServeSettings(paths, network, health), runtime)
    tasks = [
        asyncio.create_task(c)
        for c in (daemon.discovery.run(), daemon.monitor.run(), daemon.publisher.run())
    ]
    try:
        await daemon.ready.wait()
        yield daemon
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await runtime.close()


async def test_replace_deploy_through_live_route_control(
    test_image: str, docker_network: str, docker_cleanup: str,
    proxy_factory: Callable[..., ProxyProcess], tmp_path: Path,
) -> None:
    proxy = proxy_factory("--no-access-log", https=False, data_dir=tmp_path / "data")
    domains = (Domain("web.test"),)
    async with running(proxy.paths, docker_network) as daemon, httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{proxy.http_port}", headers={"Host": "web.test"},
        timeout=5, trust_env=False,
    ) as client:
        routes = LiveRouteControl(daemon, join_timeout=20)

        def ref(cid: str, dep: str) -> BackendRef:
            return BackendRef(cid, container_ip(cid, docker_network), 8080, dep)

        old = run_app(f"{test_image}:v1", docker_network, docker_cleanup, deployment="01A")
        await routes.join("web", domains, ref(old, "01A"))
        assert (await client.get("/")).text == "haloy-test-app v1\n"

        new = run_app(f"{test_image}:v2", docker_network, docker_cleanup, deployment="01B")
        await routes.set_draining("web", [old])
        await routes.join("web", domains, ref(new, "01B"))
        assert (await client.get("/")).text == "haloy-test-app v2\n"
        [app] = daemon.status().apps
        assert {r.container_id: r.routing for r in app.replicas} == {
            old: "draining", new: "active",
        }
        await routes.wait_drained("web", [old], timeout=5)

        await routes.leave("web", [old])
        [route] = proxy.status()["routes"]
        assert [b["address"] for b in route["backends"]] == [container_ip(new, docker_network)]
        docker_cli("stop", "-t", "1", old)

        await routes.set_hold("web", True)
        snap = read_snapshot(proxy.paths.snapshot_file)
        assert snap is not None and snap.routes[0].paused
        await routes.set_hold("web", False)

        await routes.forget("web")
        assert proxy.status()["routes"] == []
        assert (await client.get("/")).status_code != 200

        lost = run_app(f"{test_image}:v1", docker_network, docker_cleanup, app="lost",
                       labels={"dev.haloy.appName": "lost"})
        with pytest.raises(RuntimeError_, match="not routed within"):
            await LiveRouteControl(daemon, join_timeout=0.5).join(
                "lost", (Domain("lost.test"),), ref(lost, "01A")
            )
