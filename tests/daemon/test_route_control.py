"""RouteControl's calls one by one, inside a running haloyd, against dockerd and the real
haloy-proxy: join old, drain it, join new, leave, hold, then what stopping the app does."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from haloy.daemon.route_control import BackendRef, RouteControl
from haloy.errors import RuntimeError_
from haloy.runtime.labels import Domain
from haloy.wire.snapshot import read_snapshot
from tests.daemon.deployer_harness import DOMAIN, deployer_harness
from tests.fixtures.docker import container_ip, docker_cli, run_app
from tests.fixtures.proxy import ProxyProcess

pytestmark = pytest.mark.docker


async def test_join_drain_leave_hold_and_stop_through_the_proxy(
    tmp_path: Path, test_image: str, docker_network: str, docker_cleanup: str,
    proxy_factory: Callable[..., ProxyProcess],
) -> None:
    proxy = proxy_factory("--no-access-log", https=False)
    domains = (Domain(DOMAIN),)
    async with deployer_harness(tmp_path, docker_network, docker_cleanup, proxy) as h, \
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{proxy.http_port}",
                              headers={"Host": DOMAIN}, timeout=5, trust_env=False) as client:
        routes = RouteControl(h.haloyd, timeout=20)

        def ref(cid: str, dep: str) -> BackendRef:
            return BackendRef(cid, container_ip(cid, docker_network), 8080, dep)

        old = run_app(f"{test_image}:v1", docker_network, docker_cleanup, app=h.app,
                      deployment="01A")
        await routes.join(h.app, domains, ref(old, "01A"))
        assert (await client.get("/")).text == "haloy-test-app v1\n"

        new = run_app(f"{test_image}:v2", docker_network, docker_cleanup, app=h.app,
                      deployment="01B")
        await routes.set_draining(h.app, [old])
        await routes.join(h.app, domains, ref(new, "01B"))
        assert (await client.get("/")).text == "haloy-test-app v2\n"
        [app] = h.haloyd.status().apps
        assert {r.container_id: r.routing for r in app.replicas} == {
            old: "draining", new: "active",
        }
        await routes.wait_drained(h.app, [old], timeout=5)

        await routes.leave(h.app, [old])
        await routes.wait_published()
        [route] = proxy.status()["routes"]
        assert [b["address"] for b in route["backends"]] == [container_ip(new, docker_network)]
        docker_cli("stop", "-t", "1", old)

        await routes.set_hold(h.app, True)
        await routes.wait_published()
        snap = read_snapshot(proxy.paths.snapshot_file)
        assert snap is not None and snap.routes[0].paused
        await routes.set_hold(h.app, False)

        # Stopping the app (Deployer.stop_app): its replicas leave, then the app is forgotten.
        await routes.leave(h.app, [new])
        await routes.forget(h.app)
        assert proxy.status()["routes"] == []
        assert (await client.get("/")).status_code != 200

        # Labels that do not decode: discovery never lists it, so join gives up.
        lost = run_app(f"{test_image}:v1", docker_network, docker_cleanup, app="lost",
                       labels={"dev.haloy.appName": "lost"})
        with pytest.raises(RuntimeError_, match="healthy within"):
            await RouteControl(h.haloyd, timeout=0.5).join(
                "lost", (Domain("lost.test"),), ref(lost, "01A")
            )
