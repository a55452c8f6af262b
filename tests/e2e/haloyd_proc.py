"""A real `haloyd serve` process next to a real haloy-proxy, driven through its HTTP API.

    async with running_haloyd(tmp_path, proxy, network, app) as hd:
        dep = await hd.deploy(hd.body("v1", replicas=3))    # waits for its last event
        await hd.restart(signal.SIGTERM)                     # stop, start, API answers again

The process itself (layout, start, readiness, signals) is tests/fixtures/haloyd_server.py; this
adds the API calls and engine/proxy probes the e2e scenarios make. Its output goes to
`<tmp>/haloyd-<n>.log` (one per start), for a failing test to read.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from haloy.wire.control import send_control
from tests.daemon.deployer_harness import DOMAIN, HEALTH
from tests.fixtures.docker import TEST_IMAGE
from tests.fixtures.haloyd_server import HaloydServer, forget_app, serving
from tests.fixtures.proxy import ProxyProcess

# Fast health checks: replicas are routed and dropped within about a second.
FAST_HEALTH = ("--health-interval", "0.3", "--health-rise", "2", "--health-fall", "2",
               "--health-timeout", "1")


class Haloyd(HaloydServer):
    """One `haloyd serve` (restartable) on `proxy`'s layout, driven through its API for `app`."""

    def __init__(self, proxy: ProxyProcess, network: str, logs: Path,
                 docker_host: str | None, app: str) -> None:
        super().__init__(proxy.paths, network, logs, docker_host=docker_host,
                         serve_args=FAST_HEALTH, proxy=proxy)
        self.proxy: ProxyProcess = proxy
        self.app = app

    def body(self, version: str = "v1", **kw: Any) -> dict[str, Any]:
        """A /v1/deploy body for this test's app."""
        return {"app": self.app, "image": f"{TEST_IMAGE}:{version}", "replicas": 1,
                "domains": [{"domain": DOMAIN}], "healthCheckPath": HEALTH, **kw}

    async def submit(self, body: dict[str, Any]) -> str:
        """POST /v1/deploy; returns the deployment id."""
        resp = await self.client.post("/v1/deploy", json=body)
        assert resp.status_code == 202, resp.text
        return str(resp.json()["deploymentId"])

    async def events(self, dep_id: str) -> AsyncIterator[dict[str, Any]]:
        """The deployment's event stream, from the start until it ends."""
        async with self.client.stream("GET", f"/v1/deployments/{dep_id}/events") as resp:
            async for line in resp.aiter_lines():
                if line.startswith("data: "):
                    yield json.loads(line[6:])

    async def deploy(self, body: dict[str, Any]) -> tuple[str, str]:
        """Submit and follow to the end; returns (deployment id, last event kind)."""
        dep = await self.submit(body)
        last = [e async for e in self.events(dep)][-1]
        return dep, str(last["kind"])

    async def history(self) -> list[tuple[str, str]]:
        """(id, status) of the app's deployments, newest first."""
        resp = await self.client.get(f"/v1/apps/{self.app}/deployments")
        return [(d["id"], d["status"]) for d in resp.json()["deployments"]]

    def running(self) -> list[str]:
        """Deployment ids of the app's running containers (one per container)."""
        return sorted(self.docker("ps", "--format", "{{.Label \"dev.haloy.deployment-id\"}}",
                                  "--filter", f"label=dev.haloy.appName={self.app}").split())

    def containers(self) -> list[str]:
        """Ids of all the app's containers, in any state."""
        return self.docker("ps", "-aq", "--filter", f"label=dev.haloy.appName={self.app}",
                           check=False).split()

    async def backends(self) -> list[tuple[str, str]]:
        """(address, state) of the app's route in the proxy (empty when unrouted)."""
        status = await send_control(self.proxy.paths.control_socket, {"op": "status"}, 5.0)
        for route in status["routes"]:
            if route["domain"] == DOMAIN:
                return [(b["address"], b["state"]) for b in route["backends"]]
        return []

    async def wait_backends(self, want: int, timeout: float = 60.0) -> list[tuple[str, str]]:
        """Wait until the proxy routes exactly `want` active backends to the app."""
        async with asyncio.timeout(timeout):
            while True:
                got = await self.backends()
                if [s for _, s in got] == ["active"] * want:
                    return got
                await asyncio.sleep(0.05)

    async def close(self) -> None:
        """Stop haloyd, remove the app's containers and image tags."""
        await super().close()
        forget_app(self.app, self.docker_host)


@contextlib.asynccontextmanager
async def running_haloyd(
    tmp_path: Path, proxy: ProxyProcess, network: str, app: str,
    docker_host: str | None = None,
) -> AsyncIterator[Haloyd]:
    """A started haloyd on `proxy`'s layout (written, not `haloyd init`); cleaned up after."""
    async with serving(Haloyd(proxy, network, tmp_path, docker_host, app), init=False) as hd:
        yield hd


def crash(hd: Haloyd, container: str) -> None:
    """SIGKILL the container's main process from the host: a crash, not a user's stop."""
    pid = int(hd.docker("inspect", "-f", "{{.State.Pid}}", container))
    os.kill(pid, signal.SIGKILL)
