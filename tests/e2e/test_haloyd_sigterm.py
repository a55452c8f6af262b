"""`haloyd serve` restarted with SIGTERM under load, idle and in the middle of deploys.

test_haloyd_kill_drain.py SIGKILLs haloyd while a deploy drains; this stops it the polite way,
first with no deploy running, then at alternating deploy phases (a new replica in its health
gate, an old one draining). Every time: 0 failed requests, and after the restart the app runs
one version and the same deploy again converges.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.daemon.deployer_harness import DOMAIN
from tests.e2e.loadgen import LoadGen
from tests.e2e.scale import record, size
from tests.fixtures.haloyd_server import running_haloyd
from tests.fixtures.proxy import ProxyProcess

pytestmark = pytest.mark.docker

# Event messages that start each phase a restart lands in.
PHASES = ("gate new 1", "drain")


async def test_sigterm_idle_and_mid_deploy_under_load(
    tmp_path: Path, test_image: str, docker_network: str, docker_cleanup: str,
    proxy_factory: Callable[..., ProxyProcess],
) -> None:
    rounds = int(size(2, 10))
    proxy = proxy_factory("--no-access-log", https=False, data_dir=tmp_path / "data")
    async with running_haloyd(tmp_path, proxy, docker_network, f"t{docker_cleanup}") as hd:
        current, kind = await hd.deploy(hd.body("v1", replicas=3))
        assert kind == "succeeded"
        url = f"http://127.0.0.1:{proxy.http_port}"
        interrupted: list[str] = []
        async with LoadGen(url, DOMAIN, max_requests=300_000, max_seconds=120 * rounds) as load:
            # No deploy running: a restart changes nothing the proxy serves.
            before = await hd.backends()
            assert await hd.restart(signal.SIGTERM) == 0
            assert await hd.backends() == before
            version = "v1"
            for i in range(rounds):
                version = "v2" if version == "v1" else "v1"
                body = hd.body(version, replicas=3)
                dep = await hd.submit(body)
                phase = PHASES[i % len(PHASES)]
                async for event in hd.events(dep):
                    if event["message"].startswith(phase):
                        break
                assert await hd.restart(signal.SIGTERM) == 0
                interrupted.append(phase)
                history = await hd.history()
                assert history[:2] == [(dep, "failed"), (current, "succeeded")], history
                assert hd.running() == [current] * 3
                # The same deploy again converges.
                current, kind = await hd.deploy(body)
                assert kind == "succeeded"
                assert hd.running() == [current] * 3
                await hd.wait_backends(3)
            seen = load.report.sent
            await load.wait_sent(seen + 20)  # the proxy serves the converged state
        record(f"haloyd SIGTERM idle + in {rounds} deploys (3 replicas)", load.report,
               phases=",".join(interrupted))
        assert load.report.failures == [], load.report.describe_failures()
        assert {b.split()[-1] for b in load.report.bodies()} == {"v1", "v2"}
