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
from tests.fixtures.docker import container_ip, docker_cli, run_app
from tests.fixtures.haloyd_server import FAST_HEALTH, HaloydServer, serving
from tests.fixtures.polling import await_until
from tests.fixtures.proxy import ProxyProcess

pytestmark = pytest.mark.docker


async def proxy_hash(paths: Paths) -> str:
    return str((await send_control(paths.control_socket, {"op": "status"}, 2.0))["config_hash"])


async def wait_served(port: int, host: str, want: str, timeout: float = 20.0) -> None:
    async with httpx.AsyncClient(timeout=2, trust_env=False) as client:
        await await_until(f"{host} to serve {want!r}",
                          lambda: client.get(f"http://127.0.0.1:{port}/", headers={"Host": host}),
                          lambda r: r.status_code == 200 and r.text == want,
                          timeout=timeout, interval=0.02, ignoring=(httpx.HTTPError,))


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

    async def more(self, n: int) -> None:
        """Wait until `n` more requests were answered."""
        target = self.ok + n
        await await_until(f"{n} more answers", lambda: self.ok >= target, timeout=20,
                          interval=0.01)


async def test_routed_through_proxy_then_restarts_and_kill_under_load(
    tmp_path: Path, test_image: str, docker_network: str, docker_cleanup: str,
    proxy_factory: Callable[..., ProxyProcess],
) -> None:
    proxy = proxy_factory("--no-access-log", https=False, data_dir=tmp_path / "data")
    paths, port = proxy.paths, proxy.http_port
    hd = HaloydServer(paths, docker_network, tmp_path, serve_args=FAST_HEALTH, proxy=proxy)
    async with serving(hd, init=False):
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

        async def addresses() -> list[str]:
            status = await send_control(paths.control_socket, {"op": "status"})
            [route] = [r for r in status["routes"] if r["domain"] == "web.test"]
            return [x["address"] for x in route["backends"]]

        await await_until("both replicas routed", addresses, lambda got: len(got) == 2,
                          timeout=20)

        load = Load(port, "web.test")
        loader = asyncio.create_task(load.run())
        try:
            # haloyd restarts never touch the proxy's routes: zero failed requests.
            before = await proxy_hash(paths)
            for sig in (signal.SIGTERM, signal.SIGKILL):
                await hd.stop(sig)
                await hd.spawn()
                await load.more(50)
                assert await proxy_hash(paths) == before
            assert load.failed == []

            # Kill one replica: it leaves rotation on the event; the other keeps serving.
            docker_cli("kill", a)
            await await_until("the killed replica to leave rotation", addresses,
                              lambda got: got == [ip_b], timeout=20, interval=0.01)
            load.epoch = 1
            await load.more(100)
            # A request already in flight to the killed replica may fail; none sent after
            # the route changed may.
            assert [f for f in load.failed if f.startswith("1:")] == []
        finally:
            load.running = False
            await loader
