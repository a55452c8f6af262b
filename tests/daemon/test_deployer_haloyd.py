"""The deployer inside haloyd: routes come from discovery + health (RouteControl)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from pathlib import Path

import httpx

from haloy.certs.challenges import ChallengeStore
from haloy.certs.store import CertStore
from haloy.config.daemon import DaemonConfig
from haloy.daemon.app import Haloyd, ServeSettings
from haloy.daemon.route_builder import Controls, Replica, build_routes
from haloy.daemon.serve_tasks import api_task
from haloy.health.monitor import HealthSettings
from haloy.runtime.docker import DockerRuntime
from haloy.runtime.labels import AppLabels, Domain
from haloy.store import DeploymentStore, Status
from tests.daemon.deployer_harness import HEALTH, deployer_harness
from tests.fixtures.docker import docker_cli
from tests.fixtures.proxy import ProxyProcess

TOKEN = "0123456789abcdef" * 4


async def test_rolling_deploy_through_haloyd_under_load(
    tmp_path: Path, test_image: str, docker_network: str, docker_cleanup: str,
    proxy_factory: Callable[..., ProxyProcess],
) -> None:
    proxy = proxy_factory("--no-access-log", https=False)
    async with deployer_harness(tmp_path, docker_network, docker_cleanup, proxy) as h:
        deployer = h.deployer
        first = await deployer.wait((await deployer.submit(h.spec("v1", replicas=2))).id)
        assert first.status is Status.SUCCEEDED
        mixes: set[frozenset[str]] = set()  # active deployment ids the proxy routed at once

        async def watch_routes() -> None:
            while True:
                for route in proxy.status()["routes"]:
                    mixes.add(frozenset(b["deployment_id"] for b in route["backends"]
                                        if b["state"] == "active"))
                await asyncio.sleep(0.02)

        async with h.load() as load:
            watcher = asyncio.create_task(watch_routes())
            second = await deployer.wait((await deployer.submit(h.spec("v2", replicas=2))).id)
            watcher.cancel()
            assert second.status is Status.SUCCEEDED, second.reason
            # One replica at a time: old and new were active side by side mid-way.
            assert frozenset({first.id, second.id}) in mixes, mixes
            bad = await deployer.submit(h.spec("v2", replicas=2, health_check_path="/missing",
                                               deadline_s=3.0))
            failed = await deployer.wait(bad.id)
        assert failed.status is Status.FAILED
        assert load.failures == [], load.failures[:5]
        assert "v2" in load.versions()
        assert len(h.containers("status=running")) == 2
        assert h.containers(f"label=dev.haloy.deployment-id={first.id}") == []
        assert h.containers(f"label=dev.haloy.deployment-id={bad.id}") == []



async def test_haloyd_api_service_recovers_then_deploys(
    tmp_path: Path, test_image: str, docker_network: str, docker_cleanup: str,
    proxy_factory: Callable[..., ProxyProcess],
) -> None:
    proxy = proxy_factory("--no-access-log", https=False)
    paths = proxy.paths
    # A deployment a killed haloyd left running.
    store = await DeploymentStore.open(paths.db_file)
    left = await store.record("ghost", "haloy-test-app:v1", {})
    await store.update(left.id, Status.RUNNING)
    await store.close()

    runtime = await DockerRuntime.connect()
    daemon = Haloyd(ServeSettings(paths, docker_network, HealthSettings(interval=1.0)), runtime)
    with socket.socket() as probe:  # a free port for api.listen
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = DaemonConfig.model_validate({"api": {"listen": f"127.0.0.1:{port}"}})
    api = api_task(config, TOKEN, ChallengeStore(), CertStore(paths.certs_dir))
    url = f"http://127.0.0.1:{port}"
    app = f"t{docker_cleanup}"
    try:
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(c) for c in (
                daemon.discovery.run(), daemon.monitor.run(), daemon.publisher.run(),
                api(daemon),
            )]
            try:
                async with httpx.AsyncClient(
                    base_url=url, headers={"authorization": f"Bearer {TOKEN}"}, timeout=60
                ) as c:
                    async with asyncio.timeout(30):  # readiness: the API answers
                        while True:
                            try:
                                if (await c.get("/health")).status_code == 200:
                                    break
                            except httpx.TransportError:
                                await asyncio.sleep(0.05)
                    ghost = (await c.get("/v1/apps/ghost/deployments")).json()["deployments"]
                    assert [(d["status"], d["reason"]) for d in ghost] == [
                        ("failed", "interrupted")
                    ]
                    body = {
                        "app": app, "image": f"{test_image}:v1", "replicas": 2,
                        "domains": [{"domain": "web.test"}], "healthCheckPath": HEALTH,
                    }
                    started = await c.post("/v1/deploy", json=body)
                    assert started.status_code == 202, started.text
                    async with c.stream("GET", started.json()["eventsUrl"]) as stream:
                        kinds = [line[7:] async for line in stream.aiter_lines()
                                 if line.startswith("event: ")]
                    assert kinds[-1] == "succeeded", kinds
                    shown = (await c.get(f"/v1/apps/{app}")).json()
                    assert shown["deploymentId"] == started.json()["deploymentId"]
                    assert len(shown["replicas"]) == 2
                    stopped = await c.post(f"/v1/apps/{app}/stop", json={"removeContainers": True})
                    assert stopped.status_code == 200 and len(stopped.json()["containers"]) == 2
            finally:
                for task in tasks:
                    task.cancel()
    finally:
        await runtime.close()
        ids = docker_cli("ps", "-aq", "--filter", f"label=dev.haloy.appName={app}",
                         check=False).split()
        if ids:
            docker_cli("rm", "-f", *ids, check=False)
        tags = docker_cli("image", "ls", "--format", "{{.Repository}}:{{.Tag}}", app,
                          check=False).split()
        if tags:
            docker_cli("rmi", *tags, check=False)


def test_pinned_replicas_serve_side_by_side() -> None:
    old = [_replica("o1", "01A"), _replica("o2", "01A")]
    new = [_replica("n1", "01B"), _replica("n2", "01B")]
    up = {"o1", "o2", "n1", "n2"}.__contains__
    # Without pins the newest healthy deployment takes the route.
    plain = build_routes(old + new, up).apps["web"]
    assert set(plain.active) == {"n1", "n2"}
    # Pinned mid-rollout: exactly the pinned, routable ones (old and new together).
    pins = Controls(pinned={"web": frozenset({"o2", "n1"})}, draining=frozenset({"o1"}))
    mid = build_routes(old + new, up, pins).apps["web"]
    assert set(mid.active) == {"o2", "n1"} and mid.draining == ("o1",)
    assert mid.deployment_id == "01B"


def _replica(cid: str, deployment: str) -> Replica:
    labels = AppLabels("web", deployment, (Domain("web.test"),))
    return Replica(cid, f"web-{cid}", labels, f"10.0.0.{len(cid) + ord(cid[-1]) % 200}")
