"""The deploy, rollback and stop endpoints over real HTTP, driving the real deployer."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx

from haloy.daemon.api import StaticStatus, create_api, make_server, serve_api
from tests.daemon.deployer_harness import DOMAIN, HEALTH, Harness, deployer_harness
from tests.fixtures.docker import TEST_IMAGE
from tests.fixtures.proxy import ProxyProcess

TOKEN = "t0ken-for-deployer-tests-0123456789"


async def serve(h: Harness) -> tuple[str, asyncio.Task[None], Any]:
    app = create_api(TOKEN, StaticStatus(), h.store, events=h.events, deployer=h.deployer)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)  # listening before uvicorn starts: clients queue, no readiness polling
    server = make_server(app)
    task = asyncio.create_task(serve_api(server, [sock]))
    return f"http://127.0.0.1:{sock.getsockname()[1]}", task, server


async def events_of(client: httpx.AsyncClient, url: str) -> AsyncIterator[dict[str, Any]]:
    async with client.stream("GET", url) as resp:
        assert resp.status_code == 200
        async for line in resp.aiter_lines():
            if line.startswith("data: "):
                yield json.loads(line[6:])


async def last_event(client: httpx.AsyncClient, url: str) -> dict[str, Any]:
    events = [event async for event in events_of(client, url)]
    return events[-1]


def body(h: Harness, version: str, **kw: Any) -> dict[str, Any]:
    return {
        "app": h.app, "image": f"{TEST_IMAGE}:{version}", "domains": [{"domain": DOMAIN}],
        "healthCheckPath": HEALTH, "replicas": 1, "deadlineSeconds": 30,
        "config": {"name": h.app}, **kw,
    }


async def test_deploy_rollback_stop_over_http(
    tmp_path: Path, test_image: str, docker_network: str, docker_cleanup: str,
    proxy_factory: Callable[..., ProxyProcess],
) -> None:
    proxy = proxy_factory("--no-access-log", https=False)
    async with deployer_harness(tmp_path, docker_network, docker_cleanup, proxy) as h:
        url, task, server = await serve(h)
        headers = {"authorization": f"Bearer {TOKEN}"}
        try:
            async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as c:
                first = await c.post("/v1/deploy", json=body(h, "v1"))
                assert first.status_code == 202, first.text
                v1 = first.json()["deploymentId"]
                busy = await c.post("/v1/deploy", json=body(h, "v2"))
                assert busy.status_code == 409 and busy.json()["error"] == "deploy_in_progress"
                assert v1 in busy.json()["hint"]
                end = await last_event(c, first.json()["eventsUrl"])
                assert end["kind"] == "succeeded", end

                second = await c.post("/v1/deploy", json=body(h, "v2"))
                v2 = second.json()["deploymentId"]
                assert (await last_event(c, second.json()["eventsUrl"]))["kind"] == "succeeded"

                back = await c.post(f"/v1/apps/{h.app}/rollback", json={"deploymentId": v1})
                assert back.status_code == 202, back.text
                assert (await last_event(c, back.json()["eventsUrl"]))["kind"] == "succeeded"
                history = (await c.get(f"/v1/apps/{h.app}/deployments")).json()["deployments"]
                assert [(d["status"], d["rolledBackFrom"]) for d in history] == [
                    ("succeeded", v1), ("rolled_back", None), ("succeeded", None),
                ]
                assert history[0]["imageDigest"] == history[2]["imageDigest"]
                assert history[0]["id"] != v1 and history[1]["id"] == v2

                bad = await c.post("/v1/deploy", json=body(h, "v1", domains=[{"domain": "a b"}]))
                assert bad.status_code == 422
                two_named = await c.post("/v1/deploy", json=body(
                    h, "v1", namingStrategy="static", strategy="replace", replicas=2))
                assert two_named.status_code == 422 and "1 replica" in two_named.json()["detail"]
                traversal = await c.post("/v1/apps/..%2Fetc/rollback", json={"deploymentId": v1})
                assert traversal.status_code == 400
                unknown = await c.post(f"/v1/apps/{h.app}/rollback",
                                       json={"deploymentId": "0" * 26})
                assert unknown.status_code == 404

                stopped = await c.post(f"/v1/apps/{h.app}/stop", json={"removeContainers": True})
                assert stopped.status_code == 200, stopped.text
                assert stopped.json()["removed"] is True and len(stopped.json()["containers"]) == 1
                assert h.containers() == []
            async with httpx.AsyncClient(base_url=url, timeout=10) as anon:
                assert (await anon.post("/v1/deploy", json=body(h, "v1"))).status_code == 401
        finally:
            server.should_exit = True
            await task
