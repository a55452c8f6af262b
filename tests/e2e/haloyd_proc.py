"""A real `haloyd serve` process next to a real haloy-proxy, driven through its HTTP API.

    async with running_haloyd(tmp_path, proxy, network) as hd:
        dep = await hd.deploy(hd.body("v1", replicas=3))    # waits for its last event
        await hd.restart(signal.SIGTERM)                     # stop, start, API answers again

Its stderr goes to `<tmp>/haloyd-<n>.log` (one per start), for a failing test to read.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from haloy.daemon.api_token import new_token, write_token
from haloy.proxy.control_client import send_control
from tests.daemon.deployer_harness import DOMAIN, HEALTH
from tests.fixtures.docker import TEST_IMAGE, docker_cli
from tests.fixtures.proxy import ProxyProcess

API_TIMEOUT_S = 60.0


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Haloyd:
    """One `haloyd serve` (restartable) and an API client authorised for it."""

    def __init__(self, proxy: ProxyProcess, network: str, logs: Path,
                 docker_host: str | None, app: str) -> None:
        self.proxy, self.network, self.logs = proxy, network, logs
        self.docker_host, self.app = docker_host, app
        self.port = free_port()
        self.token = new_token()
        self.proc: asyncio.subprocess.Process | None = None
        self.starts = 0
        self.client = httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{self.port}", timeout=API_TIMEOUT_S, trust_env=False,
            headers={"authorization": f"Bearer {self.token}"})

    def docker(self, *args: str, check: bool = True) -> str:
        """The docker CLI against this haloyd's engine."""
        return docker_cli(*args, check=check, host=self.docker_host)

    async def start(self) -> None:
        """Spawn `haloyd serve` (fast health checks) and wait until its API answers."""
        paths = self.proxy.paths
        paths.config_dir.mkdir(parents=True, exist_ok=True)
        if self.starts == 0:
            write_token(paths.env_file, self.token)
            paths.daemon_config.write_text(f"api:\n  listen: 127.0.0.1:{self.port}\n")
        self.starts += 1
        env = {k: v for k, v in os.environ.items() if not k.startswith("HALOY_")}
        if self.docker_host:
            env["DOCKER_HOST"] = self.docker_host
        with (self.logs / f"haloyd-{self.starts}.log").open("wb") as log:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c", "from haloy.daemon.main import main; main()", "serve",
                "--config-dir", str(paths.config_dir), "--data-dir", str(paths.data_dir),
                "--network-name", self.network, "--health-interval", "0.3",
                "--health-rise", "2", "--health-fall", "2", "--health-timeout", "1",
                "--no-acme", stdout=log, stderr=log, env=env)
        await self.api_ready()

    async def api_ready(self) -> None:
        """Wait until GET /health answers 200 (the readiness signal)."""
        async with asyncio.timeout(API_TIMEOUT_S):
            while True:
                assert self.proc is not None and self.proc.returncode is None, (
                    f"haloyd exited: see {self.logs}/haloyd-{self.starts}.log")
                try:
                    if (await self.client.get("/health")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)

    async def stop(self, sig: int = signal.SIGTERM) -> int:
        """Send `sig` and wait for the exit; returns the exit code."""
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
            async with asyncio.timeout(60):
                await self.proc.wait()
        return self.proc.returncode or 0

    async def restart(self, sig: int = signal.SIGTERM) -> int:
        """Stop with `sig`, start again; returns the old process's exit code."""
        code = await self.stop(sig)
        await self.start()
        return code

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
        if self.proc is not None and self.proc.returncode is None:
            await self.stop(signal.SIGTERM)
        await self.client.aclose()
        ids = self.containers()
        if ids:
            self.docker("rm", "-f", *ids, check=False)
        tags = self.docker("image", "ls", "--format", "{{.Repository}}:{{.Tag}}", self.app,
                           check=False).split()
        if tags:
            self.docker("rmi", *tags, check=False)


@contextlib.asynccontextmanager
async def running_haloyd(
    tmp_path: Path, proxy: ProxyProcess, network: str, app: str,
    docker_host: str | None = None,
) -> AsyncIterator[Haloyd]:
    """A started haloyd on `proxy`'s data dir; stopped and cleaned up afterwards."""
    hd = Haloyd(proxy, network, tmp_path, docker_host, app)
    try:
        await hd.start()
        yield hd
    finally:
        await hd.close()


def crash(hd: Haloyd, container: str) -> None:
    """SIGKILL the container's main process from the host: a crash, not a user's stop."""
    pid = int(hd.docker("inspect", "-f", "{{.State.Pid}}", container))
    os.kill(pid, signal.SIGKILL)
