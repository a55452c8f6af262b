"""DockerRuntime against the real engine, and the busybox test image."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from haloy.errors import RuntimeError_
from haloy.runtime.docker import DockerRuntime
from tests.fixtures.docker import TEST_LABEL, docker_cli
from tests.fixtures.polling import await_until

pytestmark = pytest.mark.docker


async def test_connect_ping_and_networks(docker_available: None) -> None:
    rt = await DockerRuntime.connect()
    name = f"haloy-test-{uuid.uuid4().hex[:10]}"
    try:
        await rt.ping()
        assert not await rt.network_exists(name)
        await rt.ensure_network(name)
        await rt.ensure_network(name)  # idempotent
        assert await rt.network_exists(name)
        info = docker_cli("network", "inspect", "-f", "{{.Driver}} {{.Attachable}}", name)
        assert info == "bridge true"
    finally:
        await rt.remove_network(name)
        await rt.close()
    assert name not in docker_cli("network", "ls", "--format", "{{.Name}}").split()


async def test_unreachable_engine_is_a_runtime_error_with_hint(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError_) as info:
        await DockerRuntime.connect(f"unix://{tmp_path}/nope.sock")
    assert "cannot reach" in info.value.message
    assert info.value.hint and "dockerd" in info.value.hint


@pytest.mark.parametrize("version", ["v1", "v2"])
async def test_image_serves_page_and_health(
    test_image: str, docker_network: str, docker_cleanup: str, version: str
) -> None:
    cid = docker_cli(
        "run",
        "-d",
        "--network",
        docker_network,
        "--label",
        f"{TEST_LABEL}={docker_cleanup}",
        f"{test_image}:{version}",
    )
    rt = await DockerRuntime.connect()
    try:
        [summary] = [
            c for c in await rt.list_containers(f"{TEST_LABEL}={docker_cleanup}") if c.id == cid
        ]
    finally:
        await rt.close()
    ip = summary.networks[docker_network]
    assert summary.state == "running" and ip
    async with httpx.AsyncClient(base_url=f"http://{ip}:8080", timeout=5) as client:
        page = await _get_when_ready(client, "/")
        assert page.text == f"haloy-test-app {version}\n"
        assert (await client.get("/cgi-bin/health")).status_code == 200
        docker_cli("exec", cid, "/bin/busybox", "touch", "/tmp/unhealthy")
        assert (await client.get("/cgi-bin/health")).status_code == 500
        docker_cli("exec", cid, "/bin/busybox", "rm", "/tmp/unhealthy")
        assert (await client.get("/cgi-bin/health")).status_code == 200


async def _get_when_ready(client: httpx.AsyncClient, path: str) -> httpx.Response:
    """httpd binds its port a moment after the container starts: retry connects only."""
    return await await_until("the test app to accept a connection", lambda: client.get(path),
                             lambda _: True, timeout=10, interval=0.02,
                             ignoring=(httpx.ConnectError,))
