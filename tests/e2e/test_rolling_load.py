"""Consecutive rolling deploys of a 3-replica app through haloyd + haloy-proxy under load."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from haloy.store import Status
from tests.daemon.deployer_harness import DOMAIN, deployer_harness
from tests.e2e.loadgen import LoadGen
from tests.e2e.scale import record, size
from tests.fixtures.proxy import ProxyProcess

pytestmark = pytest.mark.docker


async def test_consecutive_rolling_deploys_under_load_drop_nothing(
    tmp_path: Path, test_image: str, docker_network: str, docker_cleanup: str,
    proxy_factory: Callable[..., ProxyProcess],
) -> None:
    deploys = int(size(3, 20))
    proxy = proxy_factory("--no-access-log", https=False)
    async with deployer_harness(tmp_path, docker_network, docker_cleanup, proxy) as h:
        deployer = h.deployer
        first = await deployer.wait((await deployer.submit(h.spec("v1", replicas=3))).id)
        assert first.status is Status.SUCCEEDED, first.reason
        url = f"http://127.0.0.1:{proxy.http_port}"
        statuses = []
        async with LoadGen(url, DOMAIN, keepalive=2, fresh=1, max_requests=200_000,
                           max_seconds=60 * deploys) as load:
            for i in range(deploys):
                version = "v2" if i % 2 == 0 else "v1"
                dep = await deployer.wait(
                    (await deployer.submit(h.spec(version, replicas=3))).id)
                statuses.append((dep.status, dep.reason))
        report = load.report
        record(f"rolling deploys x{deploys} (3 replicas)", report)
        assert all(s is Status.SUCCEEDED for s, _ in statuses), statuses
        assert report.failures == [], report.describe_failures()
        # Both versions answered, and the last deploy's version is what stays.
        assert {b.split()[-1] for b in report.bodies()} >= {"v1", "v2"}
        assert len(h.containers("status=running")) == 3
