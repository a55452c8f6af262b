"""One `haloy deploy` to two real servers: a haloyd on this machine's engine (nothing uploaded)
and one on a Docker engine of its own (only the layers it lacks are uploaded)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.cli.test_status import cli_env, run_haloy
from tests.fixtures.docker import TEST_IMAGE, PrivateDockerd, docker_cli
from tests.fixtures.haloyd_server import HaloydServer, serving
from tests.fixtures.proxy import ProxyProcess

pytestmark = pytest.mark.docker


def app_config(app: str, targets: str) -> str:
    """haloy.yaml for the busybox test app built from ./app, with these `targets:` lines."""
    return f"""
health_check_path: /cgi-bin/health
image:
  repository: {app}-img
  tag: v1
  build_config: {{context: app}}
targets:
{targets}
"""


async def add_servers(env: dict[str, str], *servers: HaloydServer) -> None:
    """`haloy server add` each server with its token."""
    for server in servers:
        added = await run_haloy("server", "add", server.url, server.token, env=env)
        assert added.code == 0, added.err


async def get_through_proxy(server: HaloydServer, host: str, path: str) -> httpx.Response:
    """GET `path` with Host `host` through the server's haloy-proxy."""
    assert server.proxy is not None
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{server.proxy.http_port}", trust_env=False
    ) as client:
        return await client.get(path, headers={"host": host})


def uploads(out: str) -> dict[str, int]:
    """Target -> layers uploaded, from `[target] uploaded N layer(s), B bytes` lines."""
    found = re.findall(r"\[(\w+)\] uploaded (\d+) layer", out)
    return {target: int(n) for target, n in found}


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
        async with serving(HaloydServer.under(tmp_path / "local", network),
                           proxy_factory=proxy_factory) as here, \
                serving(HaloydServer.under(tmp_path / "own", network, private_dockerd.host),
                        proxy_factory=proxy_factory) as there:
            env = cli_env(tmp_path, token=None)
            await add_servers(env, here, there)
            cfg = project / "haloy.yaml"
            cfg.write_text(app_config(app, f"""\
  here: {{name: {app}h, server: "{here.url}", domains: [here.test]}}
  there: {{name: {app}t, server: "{there.url}", domains: [there.test]}}"""))
            res = await run_haloy("deploy", "-c", str(cfg), "--all", env=env, timeout=240)
            assert res.code == 0, res.out + res.err
            assert uploads(res.out) == {"there": 2}  # the test image's layer and the RUN one
            for server, domain in ((here, "here.test"), (there, "there.test")):
                resp = await get_through_proxy(server, domain, "/two.html")
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
        for server in (here, there):  # SIGTERM: a clean shutdown
            assert server.exit_code == 0, server.log()
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
