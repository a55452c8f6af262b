"""`haloy deploy` (push: server) to a haloyd whose own Docker engine already has the base image:
only the app's new layer is uploaded, and the summary says how many the server had."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.cli.test_deploy_engines import uploads
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
    cfg.write_text(f"""
health_check_path: /cgi-bin/health
image:
  repository: {app}-img
  tag: v1
  build_config: {{context: app}}
targets:
  there: {{name: {app}, server: "{{url}}", domains: [there.test]}}
""")
    try:
        async with serving(HaloydServer.under(tmp_path / "own", network, private_dockerd.host),
                           proxy_factory=proxy_factory) as there:
            cfg.write_text(cfg.read_text().replace("{url}", there.url))
            env = cli_env(tmp_path, token=None)
            added = await run_haloy("server", "add", there.url, there.token, env=env)
            assert added.code == 0, added.err
            res = await run_haloy("deploy", "-c", str(cfg), "--all", env=env, timeout=240)
            assert res.code == 0, res.out + res.err + there.log()
            # A fresh layer store: the base layer counted because the engine has its chain.
            assert uploads(res.out) == {"there": 1}
            assert "the server already had 1" in res.out
            assert there.proxy is not None
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{there.proxy.http_port}", trust_env=False
            ) as client:
                resp = await client.get("/two.html", headers={"host": "there.test"})
            assert resp.status_code == 200 and "on-a-known-base" in resp.text
    finally:
        forget_app(app, private_dockerd.host)
        docker_cli("network", "rm", network, check=False, host=private_dockerd.host)
        tags = docker_cli("image", "ls", "--format", "{{.Repository}}:{{.Tag}}",
                          f"{app}-img", check=False).split()
        if tags:
            docker_cli("rmi", *tags, check=False)
