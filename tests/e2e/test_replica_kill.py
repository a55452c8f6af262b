"""One replica killed under load: only requests in flight on it fail, it leaves rotation on the
Docker event, and a crashed one restarts by policy and rejoins after `rise` checks.

Docker's restart semantics (checked on this engine, 20.10): `docker kill` counts as a stop by
the user, so even `unless-stopped` leaves the container exited; a crash (the main process
killed from outside, as the OOM killer or a segfault would) is restarted by the policy. The
test does both: `docker kill` one replica, then crash another `rounds` times.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.daemon.deployer_harness import DOMAIN
from tests.e2e.loadgen import LoadGen
from tests.e2e.scale import record, size
from tests.fixtures.haloyd_server import HaloydServer, running_haloyd
from tests.fixtures.polling import await_until
from tests.fixtures.proxy import ProxyProcess

pytestmark = pytest.mark.docker

KEEPALIVE, FRESH = 2, 1


def _address(hd: HaloydServer, cid: str) -> str:
    return hd.docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                     cid)


async def _left_rotation(hd: HaloydServer, address: str) -> None:
    """Wait until the proxy no longer routes to `address`."""
    await await_until(f"{address} to leave rotation", hd.backends,
                      lambda got: address not in [a for a, _ in got], interval=0.02)


async def _restarted(hd: HaloydServer, cid: str, restarts: int) -> None:
    """Wait until the engine restarted `cid` for the `restarts`-th time and it runs."""
    fmt = "{{.State.Running}} {{.RestartCount}}"
    await await_until(f"restart {restarts} of {cid}", lambda: hd.docker("inspect", "-f", fmt, cid),
                      lambda got: got == f"true {restarts}", interval=0.1)


async def test_killed_replica_leaves_rotation_and_crashed_one_rejoins(
    tmp_path: Path, test_image: str, docker_network: str, docker_cleanup: str,
    proxy_factory: Callable[..., ProxyProcess],
) -> None:
    rounds = int(size(1, 10))
    proxy = proxy_factory("--no-access-log", https=False, data_dir=tmp_path / "data")
    async with running_haloyd(tmp_path, proxy, docker_network, f"t{docker_cleanup}") as hd:
        _, kind = await hd.deploy(hd.body("v1", replicas=3))
        assert kind == "succeeded"
        await hd.wait_backends(3)
        killed, crashed, _ = hd.docker("ps", "-q", "--filter",
                                       f"label=dev.haloy.appName={hd.app}").split()
        url = f"http://127.0.0.1:{proxy.http_port}"
        failed_per_fault: list[int] = []
        async with LoadGen(url, DOMAIN, keepalive=KEEPALIVE, fresh=FRESH, max_requests=300_000,
                           max_seconds=60 + 60 * rounds) as load:
            # `docker kill`: out of rotation on the event; the engine leaves it exited.
            before = len(load.report.failures)
            address = _address(hd, killed)
            hd.docker("kill", killed)
            await _left_rotation(hd, address)
            await load.wait_sent(load.report.sent + 50)
            failed_per_fault.append(len(load.report.failures) - before)
            killed_state = hd.docker("inspect", "-f", "{{.State.Status}} {{.RestartCount}}",
                                     killed)
            await hd.wait_backends(2)
            for n in range(1, rounds + 1):
                # A crash: out of rotation, restarted by the policy, back after `rise` checks.
                before = len(load.report.failures)
                address = _address(hd, crashed)
                await asyncio.to_thread(hd.crash, crashed)
                await _left_rotation(hd, address)
                await _restarted(hd, crashed, n)
                await hd.wait_backends(2)
                await load.wait_sent(load.report.sent + 50)
                failed_per_fault.append(len(load.report.failures) - before)
        report = load.report
        record(f"replica docker kill + {rounds} crash(es) (3 replicas)", report,
               failed_per_fault=failed_per_fault, killed_after=killed_state)
        # Only requests in flight on the dead replica may fail: at most one per client.
        assert all(f <= KEEPALIVE + FRESH for f in failed_per_fault), (
            failed_per_fault, report.describe_failures())
        assert all(o.status in (0, 502) for o in report.failures), report.describe_failures()
