"""`haloyd serve` SIGKILLed while a deploy drains an old replica, under load: 0 failed, converges.

tests/daemon/test_deployer_crash.py kills haloyd while a new replica is in its health gate;
this kills it one step later, when a new replica already serves and an old one is draining.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.daemon.deployer_harness import DOMAIN, HEALTH
from tests.daemon.test_deployer_crash import events
from tests.e2e.loadgen import LoadGen
from tests.e2e.scale import record
from tests.fixtures.docker import TEST_IMAGE, docker_cli
from tests.fixtures.haloyd_server import HaloydServer, forget_app, serving
from tests.fixtures.proxy import ProxyProcess

pytestmark = pytest.mark.docker


def _running(app: str) -> list[str]:
    """Deployment ids of the app's running containers."""
    return sorted(docker_cli("ps", "--format", "{{.Label \"dev.haloy.deployment-id\"}}",
                             "--filter", f"label=dev.haloy.appName={app}").split())


async def test_sigkill_while_draining_under_load(
    tmp_path: Path, test_image: str, docker_network: str, docker_cleanup: str,
    proxy_factory: Callable[..., ProxyProcess],
) -> None:
    app = f"t{docker_cleanup}"
    body = {"app": app, "image": f"{TEST_IMAGE}:v1", "replicas": 3,
            "domains": [{"domain": DOMAIN}], "healthCheckPath": HEALTH}
    try:
        # Token and api.listen written (no `haloyd init`); haloyd-<n>.log in tmp_path per start.
        async with serving(HaloydServer.under(tmp_path, docker_network), init=False,
                           proxy_factory=proxy_factory) as hd:
            assert hd.proxy is not None
            c = hd.client
            first = (await c.post("/v1/deploy", json=body)).json()["deploymentId"]
            assert [e async for e in events(c, first)][-1]["kind"] == "succeeded"
            url = f"http://127.0.0.1:{hd.proxy.http_port}"
            async with LoadGen(url, DOMAIN, max_requests=200_000, max_seconds=300) as load:
                v2 = (await c.post("/v1/deploy", json={**body, "image": f"{TEST_IMAGE}:v2"})
                      ).json()["deploymentId"]
                async for event in events(c, v2):
                    if event["message"].startswith("drain"):
                        break
                await hd.stop(signal.SIGKILL)
                await hd.start()  # returns once the API answers again
                history = (await c.get(f"/v1/apps/{app}/deployments")).json()["deployments"]
                assert [(d["id"], d["status"]) for d in history] == [
                    (v2, "failed"), (first, "succeeded"),
                ]
                assert _running(app) == [first] * 3
                # The same deploy again converges.
                again = (await c.post("/v1/deploy", json={**body, "image": f"{TEST_IMAGE}:v2"})
                         ).json()["deploymentId"]
                assert [e async for e in events(c, again)][-1]["kind"] == "succeeded"
                assert _running(app) == [again] * 3
                await load.wait_sent(load.report.sent + 20)  # the proxy serves the converged state
        record("haloyd SIGKILL while draining (3 replicas)", load.report)
        assert load.report.failures == [], load.report.describe_failures()
        assert {b.split()[-1] for b in load.report.bodies()} == {"v1", "v2"}
    finally:
        forget_app(app)
