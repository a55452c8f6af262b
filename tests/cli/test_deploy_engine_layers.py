"""`haloy deploy` (push: server) to a haloyd whose own Docker engine already has the base image:
only the app's new layer is uploaded, and the summary says how many the server had."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli.test_deploy_engines import add_servers, app_config, get_through_proxy, uploads
from tests.cli.test_status import cli_env, run_haloy
from tests.fixtures.docker import TEST_IMAGE, PrivateDockerd, docker_cli
from tests.fixtures.haloyd_server import HaloydServer, forget_app, serving
from tests.fixtures.proxy import ProxyProcess

pytestmark = pytest.mark.docker


def copy_image(ref: str, to_host: str) -> None:
    """docker save here | docker load there: the other engine gets the very same layers."""
    save = subprocess.Popen(["docker", "save", ref], stdout=subprocess.PIPE)
    load = subprocess.run(["docker", "-H", to_host, "load"], stdin=save.stdout,
                          capture_output=True, text=True, timeout=120)
    assert save.stdout is not None
    save.stdout.close()
    assert save.wait(60) == 0 and load.returncode == 0, load.stderr


async def test_first_deploy_uploads_only_what_the_engine_lacks(
    tmp_path: Path, test_image: str, private_dockerd: PrivateDockerd,
    proxy_factory: Callable[..., ProxyProcess],
) -> None:
    suffix = tmp_path.name[-6:].lower().replace("_", "")
    app, network = f"chn{suffix}", f"haloy-chn{suffix}"
    copy_image(f"{TEST_IMAGE}:v1", private_dockerd.host)
    project = tmp_path / "project"
    (project / "app").mkdir(parents=True)
    (project / "app" / "two.html").write_text("on-a-known-base\n")
    (project / "app" / "Dockerfile").write_text(f"FROM {TEST_IMAGE}:v1\nCOPY two.html /www/\n")
    cfg = project / "haloy.yaml"
    try:
        async with serving(HaloydServer.under(tmp_path / "own", network, private_dockerd.host),
                           proxy_factory=proxy_factory) as there:
            cfg.write_text(app_config(
                app, f'  there: {{name: {app}, server: "{there.url}", domains: [there.test]}}'
            ))
            env = cli_env(tmp_path, token=None)
            await add_servers(env, there)
            res = await run_haloy("deploy", "-c", str(cfg), "--all", env=env, timeout=240)
            assert res.code == 0, res.out + res.err + there.log()
            # A fresh layer store: the base layer counted because the engine has its chain.
            assert uploads(res.out) == {"there": 1}
            assert "the server already had 1" in res.out
            resp = await get_through_proxy(there, "there.test", "/two.html")
            assert resp.status_code == 200 and "on-a-known-base" in resp.text
    finally:
        forget_app(app, private_dockerd.host)
        docker_cli("network", "rm", network, check=False, host=private_dockerd.host)
        tags = docker_cli("image", "ls", "--format", "{{.Repository}}:{{.Tag}}",
                          f"{app}-img", check=False).split()
        if tags:
            docker_cli("rmi", *tags, check=False)
