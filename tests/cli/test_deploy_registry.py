"""`push: registry`: the CLI builds, logs in and pushes to a real registry (Debian's
docker-registry with htpasswd auth); the deployer pulls it with the credentials sent along."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.cli.test_deploy import TOKEN, served
from tests.cli.test_status import cli_env, run_haloy
from tests.daemon.deployer_harness import DOMAIN, HEALTH, deployer_harness
from tests.daemon.test_deployer_pull import PASSWORD, USER, registry_image
from tests.fixtures.docker import TEST_IMAGE, docker_cli
from tests.fixtures.proxy import ProxyProcess

__all__ = ["registry_image"]  # the fixture this module uses


async def test_build_push_to_registry_then_server_pulls(
    tmp_path: Path, registry_image: str, docker_network: str, docker_cleanup: str,
    proxy_factory: Callable[..., ProxyProcess],
) -> None:
    host = registry_image.split("/")[0]
    proxy = proxy_factory("--no-access-log", https=False)
    async with deployer_harness(tmp_path, docker_network, docker_cleanup, proxy) as h, \
            served(h) as url:
        ref = f"{host}/{h.app}-pushed:v1"
        project = tmp_path / "project"
        (project / "app").mkdir(parents=True)
        (project / "app" / "Dockerfile").write_text(f"FROM {TEST_IMAGE}:v2\n")
        cfg = project / "haloy.yaml"
        cfg.write_text(f"""
name: {h.app}
server: {url}
domains: [{DOMAIN}]
health_check_path: {HEALTH}
image:
  repository: {host}/{h.app}-pushed
  tag: v1
  build_config: {{context: app, push: registry}}
  registry:
    server: {host}
    username: {USER}
    password: {{from: {{env: REGISTRY_PASSWORD}}}}
""")
        try:
            wrong = await run_haloy("deploy", "-c", str(cfg), env={
                **cli_env(tmp_path, TOKEN), "REGISTRY_PASSWORD": "wrong"})
            assert wrong.code == 1 and f"docker login to {host} failed" in wrong.out

            res = await run_haloy("deploy", "-c", str(cfg), env={
                **cli_env(tmp_path, TOKEN), "REGISTRY_PASSWORD": PASSWORD})
            assert res.code == 0, res.out + res.err
            assert f"docker push {ref}" in res.out
            assert f"pull {ref}" in res.out  # the server pulled it (pull_policy: always)
            assert len(h.containers()) == 1
        finally:
            docker_cli("rmi", ref, check=False)
