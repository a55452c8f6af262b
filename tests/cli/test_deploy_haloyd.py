"""The whole product as processes: `haloyd init` + `haloyd serve` + `haloy-proxy` in a temp dir,
and the `haloy` CLI deploying, inspecting and stopping an app through them (real dockerd)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.cli.test_status import cli_env, run_haloy
from tests.fixtures.docker import TEST_IMAGE
from tests.fixtures.haloyd_server import HaloydServer, forget_app, serving
from tests.fixtures.proxy import ProxyProcess

pytestmark = pytest.mark.docker

DOMAIN = "hello.test"


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
    app = f"hello{tmp_path.name[-6:].lower().replace('_', '')}"
    env = cli_env(tmp_path, token=None)
    try:
        async with serving(HaloydServer.under(tmp_path, docker_network),
                           proxy_factory=proxy_factory) as hd:
            assert hd.proxy is not None
            url = hd.url
            added = await run_haloy("server", "add", url, hd.token, env=env)
            assert added.code == 0, added.err
            cfg = tmp_path / "project" / "haloy.yaml"
            cfg.parent.mkdir()
            cfg.write_text(
                f"name: {app}\nserver: {url}\ndomains: [{DOMAIN}]\n"
                "health_check_path: /cgi-bin/health\n"
                f"image: {{repository: {TEST_IMAGE}, tag: v1, pull_policy: never}}\n"
            )
            first = await run_haloy("deploy", "-c", str(cfg), env=env)
            assert first.code == 0, first.out + first.err
            assert await get_through(hd.proxy) == f"{TEST_IMAGE} v1"

            cfg.write_text(cfg.read_text().replace("tag: v1", "tag: v2"))
            # One replica: busybox httpd (PID 1) ignores SIGTERM, so each old replica's stop
            # takes haloyd's full stop grace.
            second = await run_haloy("deploy", "-c", str(cfg), "--no-logs", env=env)
            assert second.code == 0, second.out + second.err
            assert "step" not in second.out  # --no-logs: only the result
            assert await get_through(hd.proxy) == f"{TEST_IMAGE} v2"

            status = await run_haloy("status", "-c", str(cfg), env=env)
            assert status.code == 0, status.err
            assert DOMAIN in status.out and status.out.count("active") == 1

            version = await run_haloy("server", "version", url, env=env)
            assert "deployments" in version.out

            stopped = await run_haloy("stop", "-r", "-c", str(cfg), env=env)
            assert stopped.code == 0 and "removed 1 container(s)" in stopped.out, stopped.err
    finally:
        forget_app(app)
    assert hd.exit_code == 0, hd.log()  # SIGTERM: a clean shutdown
