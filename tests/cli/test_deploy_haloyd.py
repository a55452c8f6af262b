"""The whole product as processes: `haloyd init` + `haloyd serve` + `haloy-proxy` in a temp dir,
and the `haloy` CLI deploying, inspecting and stopping an app through them (real dockerd)."""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from haloy.config.paths import Paths
from haloy.daemon.api_token import read_token
from tests.cli.test_status import cli_env, run_haloy
from tests.fixtures.docker import TEST_IMAGE, docker_cli
from tests.fixtures.proxy import ProxyProcess

pytestmark = pytest.mark.docker

DOMAIN = "hello.test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def haloyd(*args: str, paths: Paths, env: dict[str, str] | None = None) -> str:
    """Run a short `haloyd` command to completion (in `env`, default ours); return stdout."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from haloy.daemon.main import main; main()", *args,
        "--config-dir", str(paths.config_dir), "--data-dir", str(paths.data_dir),
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def wait_api(url: str, server: asyncio.subprocess.Process) -> None:
    """Readiness: GET /health answers (haloyd opens the API after its first reconcile)."""
    async with httpx.AsyncClient(timeout=2, trust_env=False) as client, asyncio.timeout(30):
        while True:
            assert server.returncode is None, "haloyd serve exited"
            try:
                if (await client.get(f"{url}/health")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.05)


async def get_through(proxy: ProxyProcess) -> str:
    """One request through the proxy on a fresh connection (no keep-alive to drain)."""
    async with httpx.AsyncClient(timeout=5, trust_env=False) as client:
        resp = await client.get(f"http://127.0.0.1:{proxy.http_port}/", headers={"host": DOMAIN})
    assert resp.status_code == 200, resp.text
    return resp.text.strip()


async def test_cli_against_real_haloyd_and_proxy(
    tmp_path: Path, test_image: str, docker_network: str,
    proxy_factory: Callable[..., ProxyProcess],
) -> None:
    paths = Paths(tmp_path / "etc", tmp_path / "var")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    await haloyd("init", paths=paths)
    await haloyd("config", "set", "api.listen", f"127.0.0.1:{port}", paths=paths)
    token = read_token(paths.config_dir / ".env")
    proxy = proxy_factory("--no-access-log", https=False, data_dir=paths.data_dir)
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from haloy.daemon.main import main; main()", "serve",
        "--config-dir", str(paths.config_dir), "--data-dir", str(paths.data_dir),
        "--network-name", docker_network, "--no-acme", "--health-interval", "0.5",
        stderr=asyncio.subprocess.PIPE,
    )
    app = f"hello{tmp_path.name[-6:].lower().replace('_', '')}"
    env = cli_env(tmp_path, token=None)
    try:
        await wait_api(url, server)
        added = await run_haloy("server", "add", url, token, env=env)
        assert added.code == 0, added.err
        cfg = tmp_path / "project" / "haloy.yaml"
        cfg.parent.mkdir()
        cfg.write_text(
            f"name: {app}\nserver: {url}\ndomains: [{DOMAIN}]\nhealth_check_path: /cgi-bin/health\n"
            f"image: {{repository: {TEST_IMAGE}, tag: v1, pull_policy: never}}\n"
        )
        first = await run_haloy("deploy", "-c", str(cfg), env=env)
        assert first.code == 0, first.out + first.err
        assert await get_through(proxy) == f"{TEST_IMAGE} v1"

        cfg.write_text(cfg.read_text().replace("tag: v1", "tag: v2"))
        # One replica: busybox httpd (PID 1) ignores SIGTERM, so each old replica's stop
        # takes haloyd's full stop grace.
        second = await run_haloy("deploy", "-c", str(cfg), "--no-logs", env=env)
        assert second.code == 0, second.out + second.err
        assert "step" not in second.out  # --no-logs: only the result
        assert await get_through(proxy) == f"{TEST_IMAGE} v2"

        status = await run_haloy("status", "-c", str(cfg), env=env)
        assert status.code == 0, status.err
        assert DOMAIN in status.out and status.out.count("active") == 1

        version = await run_haloy("server", "version", url, env=env)
        assert "deployments" in version.out

        stopped = await run_haloy("stop", "-r", "-c", str(cfg), env=env)
        assert stopped.code == 0 and "removed 1 container(s)" in stopped.out, stopped.err
    finally:
        if server.returncode is None:
            server.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            _, err = await server.communicate()
        ids = docker_cli("ps", "-aq", "--filter", f"label=dev.haloy.appName={app}",
                         check=False).split()
        if ids:
            docker_cli("rm", "-f", *ids, check=False)
        tags = docker_cli("image", "ls", "--format", "{{.Repository}}:{{.Tag}}", app,
                          check=False).split()
        if tags:
            docker_cli("rmi", *tags, check=False)
    assert server.returncode == 0, err.decode()[-2000:]
