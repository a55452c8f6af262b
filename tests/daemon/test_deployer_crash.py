"""`haloyd serve` SIGKILLed mid-deploy: on restart the app converges on its previous version."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx

from haloy.daemon.api_token import new_token, write_token
from tests.daemon.deployer_harness import DOMAIN, HEALTH, Load
from tests.fixtures.docker import TEST_IMAGE, docker_cli
from tests.fixtures.proxy import ProxyProcess


async def start_haloyd(proxy: ProxyProcess, network: str) -> asyncio.subprocess.Process:
    paths = proxy.paths
    return await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from haloy.daemon.main import main; main()", "serve",
        "--config-dir", str(paths.config_dir), "--data-dir", str(paths.data_dir),
        "--network-name", network, "--health-interval", "0.5", "--no-acme",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )


async def api_ready(client: httpx.AsyncClient, proc: asyncio.subprocess.Process) -> None:
    async with asyncio.timeout(30):
        while True:
            assert proc.returncode is None, "haloyd exited"
            try:
                if (await client.get("/health")).status_code == 200:
                    return
            except httpx.TransportError:
                await asyncio.sleep(0.05)


async def events(client: httpx.AsyncClient, dep_id: str) -> AsyncIterator[dict[str, Any]]:
    async with client.stream("GET", f"/v1/deployments/{dep_id}/events") as resp:
        async for line in resp.aiter_lines():
            if line.startswith("data: "):
                yield json.loads(line[6:])


async def load_loop(port: int, load: Load) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=35) as client:
        while not load.stop.is_set() and load.requests < 20_000:
            load.requests += 1
            try:
                resp = await client.get("/", headers={"host": DOMAIN})
                if resp.status_code != 200:
                    raise httpx.HTTPError(f"HTTP {resp.status_code}")
                load.bodies[resp.text.strip()] = load.bodies.get(resp.text.strip(), 0) + 1
                load.served.set()
            except httpx.HTTPError as exc:
                load.failures.append(repr(exc))


async def test_sigkill_mid_deploy_converges_on_restart(
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
    body = {"app": app, "image": f"{TEST_IMAGE}:v1", "replicas": 2,
            "domains": [{"domain": DOMAIN}], "healthCheckPath": HEALTH}
    proc = await start_haloyd(proxy, docker_network)
    load = Load()
    loader: asyncio.Task[None] | None = None
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60,
                                     headers={"authorization": f"Bearer {token}"}) as c:
            await api_ready(c, proc)
            first = (await c.post("/v1/deploy", json=body)).json()["deploymentId"]
            assert [e async for e in events(c, first)][-1]["kind"] == "succeeded"
            loader = asyncio.create_task(load_loop(proxy.http_port, load))
            await load.served.wait()

            # v2 with a long min_ready: haloyd is killed while new replica 1 is in its gate.
            second = await c.post("/v1/deploy", json={**body, "image": f"{TEST_IMAGE}:v2",
                                                       "minReadySeconds": 60})
            v2 = second.json()["deploymentId"]
            async for event in events(c, v2):
                if event["message"] == "gate new 1":
                    break
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
            assert len(docker_cli("ps", "-q", "--filter", f"label=dev.haloy.appName={app}")
                       .split()) == 3

            proc = await start_haloyd(proxy, docker_network)
            await api_ready(c, proc)
            history = (await c.get(f"/v1/apps/{app}/deployments")).json()["deployments"]
            assert [(d["id"], d["status"], d["reason"]) for d in history] == [
                (v2, "failed", "interrupted"), (first, "succeeded", None),
            ]
            running = docker_cli("ps", "--format", "{{.Label \"dev.haloy.deployment-id\"}}",
                                 "--filter", f"label=dev.haloy.appName={app}").split()
            assert running == [first, first]
            served = load.requests
            async with asyncio.timeout(20):
                while load.requests < served + 20:
                    await asyncio.sleep(0.05)
        load.stop.set()
        await loader
        assert load.failures == [], load.failures[:5]
        assert set(load.bodies) == {"haloy-test-app v1"}
    finally:
        load.stop.set()
        if loader is not None and not loader.done():
            loader.cancel()
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
