"""dockerd restarted under load: apps come back, routes restored, API answers, nothing doubled.

The engine is the test's own (`private_dockerd`), so restarting it touches nobody else; haloyd
and haloy-proxy keep running across the restart. Requests fail while the engine has the
containers stopped (dockerd stops them on its way down; that is downtime haloy cannot hide
without a second engine), so the figure asserted is: 0 failed once the routes are back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.daemon.deployer_harness import DOMAIN
from tests.e2e.loadgen import LoadGen
from tests.e2e.scale import record, size
from tests.fixtures.docker import PrivateDockerd
from tests.fixtures.haloyd_server import running_haloyd
from tests.fixtures.proxy import ProxyProcess

pytestmark = pytest.mark.docker

REPLICAS = 2


async def test_dockerd_restart_restores_apps_routes_and_api(
    tmp_path: Path, private_dockerd: PrivateDockerd, docker_cleanup: str,
    proxy_factory: Callable[..., ProxyProcess],
) -> None:
    engine = private_dockerd
    rounds = int(size(1, 5))
    proxy = proxy_factory("--no-access-log", https=False, data_dir=tmp_path / "data")
    async with running_haloyd(tmp_path, proxy, f"hly-{docker_cleanup}", f"t{docker_cleanup}",
                              docker_host=engine.host) as hd:
        first, kind = await hd.deploy(hd.body("v1", replicas=REPLICAS))
        assert kind == "succeeded"
        await hd.wait_backends(REPLICAS)
        url = f"http://127.0.0.1:{proxy.http_port}"
        after_restore: list[int] = []
        async with LoadGen(url, DOMAIN, max_requests=300_000,
                           max_seconds=120 + 120 * rounds, request_timeout=10) as load:
            for _ in range(rounds):
                await asyncio.to_thread(engine.stop)
                await asyncio.to_thread(engine.start)
                # `unless-stopped` brings the replicas back; discovery routes them again.
                await hd.wait_backends(REPLICAS, timeout=120)
                await hd.api_ready()
                assert hd.running() == [first] * REPLICAS
                assert len(hd.containers()) == REPLICAS
                assert await hd.history() == [(first, "succeeded")]
                mark = load.report.sent
                await load.wait_sent(mark + 50)
                after_restore.append(len([o for o in load.report.outcomes[mark:] if not o.ok]))
            # The deployer works on the restarted engine.
            second, kind = await hd.deploy(hd.body("v2", replicas=REPLICAS))
            assert kind == "succeeded"
            await hd.wait_backends(REPLICAS)
            mark = load.report.sent
            await load.wait_sent(mark + 50)
            after_restore.append(len([o for o in load.report.outcomes[mark:] if not o.ok]))
        record(f"dockerd restarted x{rounds} (2 replicas), then a deploy", load.report,
               failed_after_restore=after_restore)
        assert after_restore == [0] * (rounds + 1), load.report.describe_failures()
        assert hd.running() == [second] * REPLICAS
        assert len(hd.containers()) == REPLICAS
        assert await hd.history() == [(second, "succeeded"), (first, "succeeded")]
