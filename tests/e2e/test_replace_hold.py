"""Consecutive replace deploys under load: the proxy holds requests while no replica runs.

A replace deploy stops every old replica before starting the new ones; in between the route is
held, so requests wait instead of failing. 0 failed, and no request waits longer than the hold
window (the route's hold_timeout). tests/daemon/test_deployer_rolling.py has the single deploy.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from haloy.store import Status
from haloy.wire.snapshot import DEFAULT_HOLD_TIMEOUT
from tests.daemon.deployer_harness import DOMAIN, deployer_harness
from tests.e2e.loadgen import LoadGen
from tests.e2e.scale import record, size
from tests.fixtures.proxy import ProxyProcess

pytestmark = pytest.mark.docker


async def test_replace_deploys_under_load_hold_and_drop_nothing(
    tmp_path: Path, test_image: str, docker_network: str, docker_cleanup: str,
    proxy_factory: Callable[..., ProxyProcess],
) -> None:
    deploys = int(size(2, 10))
    proxy = proxy_factory("--no-access-log", https=False)
    async with deployer_harness(tmp_path, docker_network, docker_cleanup, proxy) as h:
        deployer = h.deployer
        first = await deployer.wait((await deployer.submit(h.spec("v1", replicas=2))).id)
        assert first.status is Status.SUCCEEDED, first.reason
        url = f"http://127.0.0.1:{proxy.http_port}"
        statuses = []
        async with LoadGen(url, DOMAIN, keepalive=2, fresh=1, max_requests=200_000,
                           max_seconds=60 * deploys,
                           request_timeout=DEFAULT_HOLD_TIMEOUT + 10) as load:
            for i in range(deploys):
                version = "v2" if i % 2 == 0 else "v1"
                dep = await deployer.wait((await deployer.submit(
                    h.spec(version, replicas=2, strategy="replace"))).id)
                statuses.append((dep.status, dep.reason))
            await load.wait_sent(load.report.sent + 20)
        report = load.report
        record(f"replace deploys x{deploys} with hold (2 replicas)", report,
               hold_window_s=DEFAULT_HOLD_TIMEOUT)
        assert all(s is Status.SUCCEEDED for s, _ in statuses), statuses
        assert report.failures == [], report.describe_failures()
        assert report.max_latency <= DEFAULT_HOLD_TIMEOUT
        assert {b.split()[-1] for b in report.bodies()} == {"v1", "v2"}
        assert len(h.containers("status=running")) == 2
