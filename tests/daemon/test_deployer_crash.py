"""`haloyd serve` SIGKILLed mid-deploy: on restart the app converges on its previous version."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx

from tests.daemon.deployer_harness import DOMAIN, HEALTH, Load
from tests.fixtures.docker import TEST_IMAGE, docker_cli
from tests.fixtures.haloyd_server import HaloydServer, forget_app, serving
from tests.fixtures.proxy import ProxyProcess


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
    app = f"t{docker_cleanup}"
    body = {"app": app, "image": f"{TEST_IMAGE}:v1", "replicas": 2,
            "domains": [{"domain": DOMAIN}], "healthCheckPath": HEALTH}
    load = Load()
    loader: asyncio.Task[None] | None = None
    try:
        # Token and api.listen written (no `haloyd init`); haloyd-<n>.log in tmp_path per start.
        async with serving(HaloydServer.under(tmp_path, docker_network), init=False,
                           proxy_factory=proxy_factory) as hd:
            assert hd.proxy is not None
            c = hd.client
            first = (await c.post("/v1/deploy", json=body)).json()["deploymentId"]
            assert [e async for e in events(c, first)][-1]["kind"] == "succeeded"
            loader = asyncio.create_task(load_loop(hd.proxy.http_port, load))
            await load.served.wait()

            # v2 with a long min_ready: haloyd is killed while new replica 1 is in its gate.
            second = await c.post("/v1/deploy", json={**body, "image": f"{TEST_IMAGE}:v2",
                                                       "minReadySeconds": 60})
            v2 = second.json()["deploymentId"]
            async for event in events(c, v2):
                if event["message"] == "gate new 1":
                    break
            await hd.stop(signal.SIGKILL)
            assert len(docker_cli("ps", "-q", "--filter", f"label=dev.haloy.appName={app}")
                       .split()) == 3

            await hd.start()  # returns once the API answers again
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
        forget_app(app)
