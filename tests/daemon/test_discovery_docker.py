"""Discovery, health monitor and publisher in-process against the real dockerd.

Each test uses its own Docker network (as haloyd's app network) so tests never see each
other's containers; pushes go to a real unix-socket listener speaking the control protocol.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from haloy.config.paths import Paths
from haloy.daemon.app import Haloyd, ServeSettings
from haloy.daemon.route_control import RouteControl
from haloy.daemon.status import DaemonStatus
from haloy.health.monitor import HealthSettings
from haloy.runtime.docker import DockerRuntime
from haloy.wire.snapshot import read_snapshot
from tests.fixtures.docker import (
    ControlStub,
    PrivateDockerd,
    backends_of,
    container_ip,
    docker_cli,
    run_app,
)

pytestmark = pytest.mark.docker

FAST = HealthSettings(interval=0.2, fall=2, rise=2, timeout=1.0, concurrency=4)


@asynccontextmanager
async def haloyd(
    tmp_path: Path, network: str, health: HealthSettings = FAST, docker_host: str | None = None
) -> AsyncIterator[tuple[Haloyd, ControlStub]]:
    """Run discovery + health + publisher in this loop; push to a control-socket stub."""
    paths = Paths(tmp_path / "etc", tmp_path / "data")
    stub = await ControlStub(paths.control_socket).start()
    runtime = await DockerRuntime.connect(docker_host)
    daemon = Haloyd(ServeSettings(paths, network, health), runtime)
    tasks = [
        asyncio.create_task(c)
        for c in (daemon.discovery.run(), daemon.monitor.run(), daemon.publisher.run())
    ]
    try:
        yield daemon, stub
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await runtime.close()
        await stub.stop()


async def settled(daemon: Haloyd, stub: ControlStub) -> DaemonStatus:
    """haloyd's status once it has seen the proxy (stub) take what the stub last received."""
    return await daemon.wait_for(
        lambda st: st.proxy_in_sync and st.config_hash == stub.config_hash, timeout=10
    )


async def test_labelled_container_routed_by_domain_and_alias_then_gone(
    tmp_path: Path, test_image: str, docker_network: str, docker_cleanup: str
) -> None:
    async with haloyd(tmp_path, docker_network) as (daemon, stub):
        cid = run_app(
            f"{test_image}:v1", docker_network, docker_cleanup, domain="web.test",
            extra={"dev.haloy.domain.0.alias.0": "www.web.test", "dev.haloy.domain.1": "b.test"},
        )
        ip = container_ip(cid, docker_network)
        snap = await stub.wait_for(lambda s: backends_of(s, "web.test") == [(ip, "active")])
        assert backends_of(snap, "www.web.test") == [(ip, "active")]
        assert backends_of(snap, "b.test") == [(ip, "active")]
        on_disk = read_snapshot(daemon.settings.paths.snapshot_file)
        assert on_disk is not None and on_disk.config_hash == stub.config_hash
        async with httpx.AsyncClient(timeout=5) as client:
            page = await client.get(f"http://{ip}:8080/")
        assert page.text == "haloy-test-app v1\n"
        status = (await settled(daemon, stub)).app("web")
        assert status is not None and status.domains == ("web.test", "b.test")
        assert status.aliases == ("www.web.test",)
        [replica] = status.replicas
        assert (replica.routing, replica.health, replica.address) == ("active", "up", ip)

        docker_cli("stop", "-t", "1", cid)
        await stub.wait_for(lambda s: backends_of(s, "web.test") is None)
        assert (await settled(daemon, stub)).apps == ()


async def test_health_flips_with_fall_and_rise(
    tmp_path: Path, test_image: str, docker_network: str, docker_cleanup: str
) -> None:
    async with haloyd(tmp_path, docker_network) as (daemon, stub):
        cid = run_app(f"{test_image}:v1", docker_network, docker_cleanup)
        ip = container_ip(cid, docker_network)
        await stub.wait_for(lambda s: backends_of(s, "web.test") == [(ip, "active")])

        docker_cli("exec", cid, "/bin/busybox", "touch", "/tmp/unhealthy")
        snap = await stub.wait_for(lambda s: backends_of(s, "web.test") == [])
        [replica] = (await settled(daemon, stub)).apps[0].replicas
        assert replica.health == "down" and replica.fail_streak >= FAST.fall
        assert replica.last_error == "HTTP 500"
        assert snap["routes"], "an app with no healthy replica keeps its route"

        docker_cli("exec", cid, "/bin/busybox", "rm", "/tmp/unhealthy")
        await stub.wait_for(lambda s: backends_of(s, "web.test") == [(ip, "active")])
        [replica] = (await settled(daemon, stub)).apps[0].replicas
        assert replica.health == "up" and replica.ok_streak >= FAST.rise


async def test_killed_replica_leaves_rotation_on_the_event(
    tmp_path: Path, test_image: str, docker_network: str, docker_cleanup: str
) -> None:
    # Checks every 60 s: only the Docker event can take the killed replica out in time.
    slow = HealthSettings(interval=60, fall=3, rise=2, timeout=1.0)
    async with haloyd(tmp_path, docker_network, slow) as (daemon, stub):
        a, b = (run_app(f"{test_image}:v1", docker_network, docker_cleanup) for _ in range(2))
        ip_a, ip_b = container_ip(a, docker_network), container_ip(b, docker_network)
        both = sorted([(ip_a, "active"), (ip_b, "active")])
        await stub.wait_for(lambda s: sorted(backends_of(s, "web.test") or []) == both)
        checks = daemon.monitor.states()[b].checks

        docker_cli("kill", a)
        await stub.wait_for(lambda s: backends_of(s, "web.test") == [(ip_b, "active")])
        assert daemon.monitor.states()[b].checks == checks, "left on the event, not a check"
        async with httpx.AsyncClient(timeout=5) as client:
            assert (await client.get(f"http://{ip_b}:8080/")).status_code == 200


async def test_new_deployment_takes_over_when_healthy_and_draining_kept(
    tmp_path: Path, test_image: str, docker_network: str, docker_cleanup: str
) -> None:
    async with haloyd(tmp_path, docker_network) as (daemon, stub):
        old = run_app(f"{test_image}:v1", docker_network, docker_cleanup, deployment="01A")
        ip_old = container_ip(old, docker_network)
        await stub.wait_for(lambda s: backends_of(s, "web.test") == [(ip_old, "active")])
        await RouteControl(daemon).set_draining("web", [old])
        new = run_app(f"{test_image}:v2", docker_network, docker_cleanup, deployment="01B")
        ip_new = container_ip(new, docker_network)
        await stub.wait_for(
            lambda s: backends_of(s, "web.test") == [(ip_new, "active"), (ip_old, "draining")]
        )
        status = await daemon.wait_for(
            lambda st: st.proxy_in_sync
            and {r.container_id: r.routing for r in st.apps[0].replicas}
            == {old: "draining", new: "active"},
            timeout=10,
        )
        assert status.apps[0].deployment_id == "01B"
        await RouteControl(daemon).undrain("web", [old])
        await stub.wait_for(lambda s: backends_of(s, "web.test") == [(ip_new, "active")])
        assert (await settled(daemon, stub)).apps[0].deployment_id == "01B"


async def test_bad_labels_reported_not_routed(
    tmp_path: Path, test_image: str, docker_network: str, docker_cleanup: str
) -> None:
    base = {
        "dev.haloy.appName": "bad", "dev.haloy.deployment-id": "01A", "dev.haloy.role": "app",
        "dev.haloy.domain.0": "bad.test",
    }
    bad = {
        "no-role": {k: v for k, v in base.items() if k != "dev.haloy.role"},
        "bad-domain": {**base, "dev.haloy.domain.0": "not a domain"},
        "bad-port": {**base, "dev.haloy.port": "eighty"},
        # Would close a Prometheus label value and start a series of its own in /metrics.
        "bad-id": {**base, "dev.haloy.deployment-id": 'x"} 1\nfake_metric{a="1'},
        "bad-app": {**base, "dev.haloy.appName": 'bad"} 1'},
    }
    async with haloyd(tmp_path, docker_network) as (daemon, stub):
        suffix = docker_cleanup
        for name, labels in bad.items():
            run_app(f"{test_image}:v1", docker_network, docker_cleanup, labels=labels,
                    name=f"{name}-{suffix}")
        good = run_app(f"{test_image}:v1", docker_network, docker_cleanup)
        ip = container_ip(good, docker_network)
        snap = await stub.wait_for(lambda s: backends_of(s, "web.test") == [(ip, "active")])
        assert [r["app"] for r in snap["routes"]] == ["web"]
        # Other tests' containers on the shared engine show up too: look at ours only.
        status = await settled(daemon, stub)
        problems = {(p.subject, p.label) for p in status.problems if p.subject.endswith(suffix)}
        assert problems == {
            (f"no-role-{suffix}", "dev.haloy.role"),
            (f"bad-domain-{suffix}", "dev.haloy.domain.0"),
            (f"bad-port-{suffix}", "dev.haloy.port"),
            (f"bad-id-{suffix}", "dev.haloy.deployment-id"),
            (f"bad-app-{suffix}", "dev.haloy.appName"),
        }


class EngineRelay:
    """A unix-socket relay in front of dockerd that the test can cut (engine "goes away")."""

    def __init__(self, path: Path, target: str = "/var/run/docker.sock") -> None:
        self.path, self.target = path, target
        self.up = True
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> EngineRelay:
        self._server = await asyncio.start_unix_server(self._handle, str(self.path))
        return self

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.up:
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_unix_connection(self.target)
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except OSError:
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}

    def cut(self) -> None:
        self.up = False
        for w in list(self._writers):
            w.transport.abort()

    async def stop(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


async def test_engine_going_away_keeps_routes_then_resubscribes_and_resyncs(
    tmp_path: Path, test_image: str, docker_network: str, docker_cleanup: str
) -> None:
    relay = await EngineRelay(tmp_path / "docker.sock").start()
    try:
        async with haloyd(
            tmp_path, docker_network, docker_host=f"unix://{relay.path}"
        ) as (daemon, stub):
            a = run_app(f"{test_image}:v1", docker_network, docker_cleanup)
            ip_a = container_ip(a, docker_network)
            await stub.wait_for(lambda s: backends_of(s, "web.test") == [(ip_a, "active")])
            reconciles = daemon.discovery.reconciles

            relay.cut()
            b = run_app(f"{test_image}:v1", docker_network, docker_cleanup, app="other",
                        domain="other.test")
            ip_b = container_ip(b, docker_network)
            # While the engine is away nothing is learnt, and the known routes stay.
            assert daemon.discovery.reconciles == reconciles
            assert backends_of(stub.latest or {}, "web.test") == [(ip_a, "active")]

            relay.up = True
            snap = await stub.wait_for(
                lambda s: backends_of(s, "other.test") == [(ip_b, "active")]
            )
            assert backends_of(snap, "web.test") == [(ip_a, "active")]
    finally:
        await relay.stop()


async def test_dockerd_restart_resubscribes_and_routes_come_back(
    tmp_path: Path, private_dockerd: PrivateDockerd, docker_cleanup: str
) -> None:
    engine = private_dockerd
    net = "apps"
    docker_cli("network", "create", net, host=engine.host)
    async with haloyd(tmp_path, net, docker_host=engine.host) as (daemon, stub):
        a = run_app("haloy-test-app:v1", net, docker_cleanup, host=engine.host,
                    restart="unless-stopped")
        ip_a = container_ip(a, net, engine.host)
        await stub.wait_for(lambda s: backends_of(s, "web.test") == [(ip_a, "active")])
        reconciles = daemon.discovery.reconciles

        # dockerd stops its containers on the way down; `unless-stopped` brings `a` back.
        await asyncio.to_thread(engine.stop)
        await asyncio.to_thread(engine.start)
        ip_a = container_ip(a, net, engine.host)
        await stub.wait_for(lambda s: backends_of(s, "web.test") == [(ip_a, "active")])
        assert daemon.discovery.reconciles > reconciles

        # Events flow again: a container started now is routed.
        b = run_app("haloy-test-app:v1", net, docker_cleanup, host=engine.host, app="other",
                    domain="other.test")
        ip_b = container_ip(b, net, engine.host)
        snap = await stub.wait_for(lambda s: backends_of(s, "other.test") == [(ip_b, "active")])
        assert backends_of(snap, "web.test") == [(ip_a, "active")]
