"""`haloyd serve` SIGKILLed while a deploy drains an old replica, under load: 0 failed, converges.

tests/daemon/test_deployer_crash.py kills haloyd while a new replica is in its health gate;
this kills it one step later, when a new replica already serves and an old one is draining.
"""

from __future__ import annotations

import asyncio
import signal
import socket
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from haloy.daemon.api_token import new_token, write_token
from tests.daemon.deployer_harness import DOMAIN, HEALTH
from tests.daemon.test_deployer_crash import api_ready, events, start_haloyd
from tests.e2e.loadgen import LoadGen
from tests.e2e.scale import record
from tests.fixtures.docker import TEST_IMAGE, docker_cli
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
    proxy = proxy_factory("--no-access-log", https=False, data_dir=tmp_path / "data")
    paths = proxy.paths
    token = new_token()
    paths.config_dir.mkdir(parents=True, exist_ok=True)
    write_token(paths.env_file, token)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    paths.daemon_config.write_text(f"api:\n  listen: 127.0.0.1:{port}\n")
    app = f"t{docker_cleanup}"
    body = {"app": app, "image": f"{TEST_IMAGE}:v1", "replicas": 3,
            "domains": [{"domain": DOMAIN}], "healthCheckPath": HEALTH}
    proc = await start_haloyd(proxy, docker_network)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60,
                                     headers={"authorization": f"Bearer {token}"}) as c:
            await api_ready(c, proc)
            first = (await c.post("/v1/deploy", json=body)).json()["deploymentId"]
            assert [e async for e in events(c, first)][-1]["kind"] == "succeeded"
            url = f"http://127.0.0.1:{proxy.http_port}"
            async with LoadGen(url, DOMAIN, max_requests=200_000, max_seconds=300) as load:
                v2 = (await c.post("/v1/deploy", json={**body, "image": f"{TEST_IMAGE}:v2"})
                      ).json()["deploymentId"]
                async for event in events(c, v2):
                    if event["message"].startswith("drain"):
                        break
                proc.send_signal(signal.SIGKILL)
                await proc.wait()
                proc = await start_haloyd(proxy, docker_network)
                await api_ready(c, proc)
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
                seen = load.report.sent
                while load.report.sent < seen + 20:  # the proxy serves the converged state
                    await asyncio.sleep(0.05)
        record("haloyd SIGKILL while draining (3 replicas)", load.report)
        assert load.report.failures == [], load.report.describe_failures()
        assert {b.split()[-1] for b in load.report.bodies()} == {"v1", "v2"}
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            await proc.wait()
        ids = docker_cli("ps", "-aq", "--filter", f"label=dev.haloy.appName={app}",
                         check=False).split()
        if ids:
            docker_cli("rm", "-f", *ids, check=False)
        tags = docker_cli("image", "ls", "--format", "{{.Repository}}:{{.Tag}}", app,
                          check=False).split()
        if tags:
            docker_cli("rmi", *tags, check=False)
