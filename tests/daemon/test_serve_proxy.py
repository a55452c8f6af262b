"""haloyd serve + the real haloy-proxy: routes by domain and alias, kill under load, restarts.

Both run as real processes on one temp data dir (snapshot file + control socket), the proxy
on a loopback port; app containers sit on the test's own Docker network.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from haloy.config.paths import Paths
from haloy.wire.control import send_control
from tests.daemon.test_serve import start_haloyd, stop
from tests.fixtures.docker import container_ip, docker_cli, run_app
from tests.fixtures.proxy import ProxyProcess

pytestmark = pytest.mark.docker


async def proxy_hash(paths: Paths) -> str:
    return str((await send_control(paths.control_socket, {"op": "status"}, 2.0))["config_hash"])


async def wait_served(port: int, host: str, want: str, timeout: float = 20.0) -> None:
    async with httpx.AsyncClient(timeout=2, trust_env=False) as client, asyncio.timeout(timeout):
        while True:
            try:
                r = await client.get(f"http://127.0.0.1:{port}/", headers={"Host": host})
                if r.status_code == 200 and r.text == want:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.02)


@dataclass
class Load:
    """A bounded load loop through the proxy: counts answers and failures."""

    port: int
    host: str
    ok: int = 0
    failed: list[str] = field(default_factory=list)
    running: bool = True
    epoch: int = 0  # bumped by the test; failures are tagged with the epoch they started in

    async def run(self, limit: int = 20000) -> None:
        async with httpx.AsyncClient(timeout=5, trust_env=False) as client:
            while self.running and self.ok + len(self.failed) < limit:
                epoch = self.epoch
                try:
                    r = await client.get(
                        f"http://127.0.0.1:{self.port}/", headers={"Host": self.host}
                    )
                    if r.status_code == 200:
                        self.ok += 1
                    else:
                        self.failed.append(f"{epoch}: HTTP {r.status_code}")
                except httpx.HTTPError as exc:
                    self.failed.append(f"{epoch}: {exc!r}")
                await asyncio.sleep(0.002)


async def test_routed_through_proxy_then_restarts_and_kill_under_load(
    tmp_path: Path, test_image: str, docker_network: str, docker_cleanup: str,
    proxy_factory: Callable[..., ProxyProcess],
) -> None:
    proxy = proxy_factory("--no-access-log", https=False, data_dir=tmp_path / "data")
    paths, port = proxy.paths, proxy.http_port
    daemon = await start_haloyd(paths, docker_network)
    try:
        a = run_app(f"{test_image}:v1", docker_network, docker_cleanup, domain="web.test",
                    extra={"dev.haloy.domain.0.alias.0": "www.web.test"})
        await wait_served(port, "web.test", "haloy-test-app v1\n")
        async with httpx.AsyncClient(timeout=5, trust_env=False) as client:
            alias = await client.get(
                f"http://127.0.0.1:{port}/x", headers={"Host": "www.web.test"}
            )
        assert alias.status_code == 301
        assert "web.test/x" in alias.headers["location"]

        b = run_app(f"{test_image}:v1", docker_network, docker_cleanup, domain="web.test")
        ip_b = container_ip(b, docker_network)

        async def both_routed() -> bool:
            status = await send_control(paths.control_socket, {"op": "status"})
            [route] = [r for r in status["routes"] if r["domain"] == "web.test"]
            return len(route["backends"]) == 2

        async with asyncio.timeout(20):
            while not await both_routed():
                await asyncio.sleep(0.05)

        load = Load(port, "web.test")
        loader = asyncio.create_task(load.run())
        try:
            # haloyd restarts never touch the proxy's routes: zero failed requests.
            before = await proxy_hash(paths)
            for sig in (signal.SIGTERM, signal.SIGKILL):
                await stop(daemon, sig)
                daemon = await start_haloyd(paths, docker_network)
                served = load.ok
                async with asyncio.timeout(20):
                    while load.ok < served + 50:
                        await asyncio.sleep(0.01)
                assert await proxy_hash(paths) == before
            assert load.failed == []

            # Kill one replica: it leaves rotation on the event; the other keeps serving.
            docker_cli("kill", a)
            async with asyncio.timeout(20):
                while True:
                    status = await send_control(paths.control_socket, {"op": "status"})
                    [route] = [r for r in status["routes"] if r["domain"] == "web.test"]
                    if [x["address"] for x in route["backends"]] == [ip_b]:
                        break
                    await asyncio.sleep(0.01)
            load.epoch = 1
            served = load.ok
            async with asyncio.timeout(20):
                while load.ok < served + 100:
                    await asyncio.sleep(0.01)
            # A request already in flight to the killed replica may fail; none sent after
            # the route changed may.
            assert [f for f in load.failed if f.startswith("1:")] == []
        finally:
            load.running = False
            await loader
    finally:
        if daemon.returncode is None:
            await stop(daemon, signal.SIGTERM)
