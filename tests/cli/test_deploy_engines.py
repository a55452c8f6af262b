"""One `haloy deploy` to two real servers: a haloyd on this machine's engine (nothing uploaded)
and one on a Docker engine of its own (only the layers it lacks are uploaded)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from haloy.config.paths import Paths
from haloy.daemon.api_token import read_token
from tests.cli.test_deploy_haloyd import free_port, haloyd, wait_api
from tests.cli.test_status import cli_env, run_haloy
from tests.fixtures.docker import TEST_IMAGE, PrivateDockerd, docker_cli
from tests.fixtures.proxy import ProxyProcess

pytestmark = pytest.mark.docker

HALOYD = "from haloy.daemon.main import main; main()"


@dataclass
class Server:
    url: str
    token: str
    proxy: ProxyProcess
    docker_host: str | None


def uploads(out: str) -> dict[str, int]:
    """Target -> layers uploaded, from `[target] uploaded N layer(s), B bytes` lines."""
    found = re.findall(r"\[(\w+)\] uploaded (\d+) layer", out)
    return {target: int(n) for target, n in found}


@asynccontextmanager
async def haloyd_server(
    root: Path, network: str, proxy_factory: Callable[..., ProxyProcess],
    docker_host: str | None = None,
) -> AsyncIterator[Server]:
    """`haloyd init` + `haloyd serve` + haloy-proxy in `root`, on the engine at `docker_host`."""
    paths = Paths(root / "etc", root / "var")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HALOY_")}
    if docker_host:
        env["DOCKER_HOST"] = docker_host
    port = free_port()
    await haloyd("init", "--network-name", network, paths=paths, env=env)
    await haloyd("config", "set", "api.listen", f"127.0.0.1:{port}", paths=paths, env=env)
    proxy = proxy_factory("--no-access-log", https=False, data_dir=paths.data_dir)
    serve = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HALOYD, "serve",
        "--config-dir", str(paths.config_dir), "--data-dir", str(paths.data_dir),
        "--network-name", network, "--no-acme", "--health-interval", "0.5",
        env=env, stderr=asyncio.subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_api(url, serve)
        yield Server(url, read_token(paths.config_dir / ".env"), proxy, docker_host)
    finally:
        if serve.returncode is None:
            serve.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            _, err = await serve.communicate()
        assert serve.returncode == 0, err.decode()[-2000:]


async def test_deploy_uploads_only_to_the_server_on_another_engine(
    tmp_path: Path, test_image: str, private_dockerd: PrivateDockerd,
    proxy_factory: Callable[..., ProxyProcess],
) -> None:
    suffix = tmp_path.name[-6:].lower().replace("_", "")
    app, network = f"eng{suffix}", f"haloy-eng{suffix}"
    project = tmp_path / "project"
    (project / "app").mkdir(parents=True)
    (project / "app" / "Dockerfile").write_text(
        f"FROM {TEST_IMAGE}:v1\nRUN echo built-for-two-engines > /www/two.html\n"
    )
    try:
        async with haloyd_server(tmp_path / "local", network, proxy_factory) as here, \
                haloyd_server(tmp_path / "own", network, proxy_factory,
                              private_dockerd.host) as there:
            env = cli_env(tmp_path, token=None)
            for server in (here, there):
                added = await run_haloy("server", "add", server.url, server.token, env=env)
                assert added.code == 0, added.err
            cfg = project / "haloy.yaml"
            cfg.write_text(f"""
health_check_path: /cgi-bin/health
image:
  repository: {app}-img
  tag: v1
  build_config: {{context: app}}
targets:
  here: {{name: {app}h, server: "{here.url}", domains: [here.test]}}
  there: {{name: {app}t, server: "{there.url}", domains: [there.test]}}
""")
            res = await run_haloy("deploy", "-c", str(cfg), "--all", env=env, timeout=240)
            assert res.code == 0, res.out + res.err
            assert uploads(res.out) == {"there": 2}  # the test image's layer and the RUN one
            for server, host in ((here, "here.test"), (there, "there.test")):
                async with httpx.AsyncClient(
                    base_url=f"http://127.0.0.1:{server.proxy.http_port}", trust_env=False
                ) as client:
                    resp = await client.get("/two.html", headers={"host": host})
                assert resp.status_code == 200 and "built-for-two-engines" in resp.text
            # A new version changes one layer: only that one goes, and only to "there".
            (project / "app" / "Dockerfile").write_text(
                f"FROM {TEST_IMAGE}:v1\nRUN echo built-again > /www/two.html\n"
            )
            again = await run_haloy("deploy", "-c", str(cfg), "--all", env=env, timeout=240)
            assert again.code == 0, again.out + again.err
            assert uploads(again.out) == {"there": 1}
            # Each engine runs its own copy; neither saw the other's container.
            for host, name in ((None, f"{app}h"), (private_dockerd.host, f"{app}t")):
                ids = docker_cli("ps", "-q", "--filter", f"label=dev.haloy.appName={name}",
                                 host=host).split()
                assert len(ids) == 1
    finally:
        for host in (None, private_dockerd.host):
            ids = [i for name in (f"{app}h", f"{app}t") for i in docker_cli(
                "ps", "-aq", "--filter", f"label=dev.haloy.appName={name}", check=False,
                host=host).split()]
            if ids:
                docker_cli("rm", "-f", *ids, check=False, host=host)
            docker_cli("network", "rm", network, check=False, host=host)
        tags = docker_cli("image", "ls", "--format", "{{.Repository}}:{{.Tag}}", "--filter",
                          f"reference={app}*", check=False).split()
        if tags:
            docker_cli("rmi", *tags, check=False)
