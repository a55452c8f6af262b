"""`haloy deploy`, `status`, `rollback`, `stop` end to end: the CLI as a real process, a real
uvicorn serving `create_api` with the real deployer, a real dockerd and a real haloy-proxy."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from haloy.cli.hooks import run_hooks
from haloy.daemon.api import LayerStore, StaticStatus, create_api, make_server, serve_api
from haloy.daemon.api.images import ImageLoader
from haloy.errors import HaloyError
from tests.cli.test_status import cli_env, run_haloy
from tests.daemon.deployer_harness import DOMAIN, HEALTH, Harness, deployer_harness
from tests.fixtures.docker import TEST_IMAGE, docker_cli
from tests.fixtures.proxy import ProxyProcess

TOKEN = "t0ken-for-cli-deploy-tests-0123456789"


@contextlib.asynccontextmanager
async def served(
    h: Harness, layers: LayerStore | None = None, images: ImageLoader | None = None
) -> AsyncIterator[str]:
    """The API with the harness's deployer on a loopback port; yields its URL."""
    app = create_api(TOKEN, StaticStatus(), h.store, events=h.events, deployer=h.deployer,
                     layers=layers, images=images)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)  # listening before uvicorn starts: clients queue, no readiness polling
    server = make_server(app)
    task = asyncio.create_task(serve_api(server, [sock]))
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        ids = docker_cli("ps", "-aq", "--filter", f"label=dev.haloy.appName={h.app}",
                         check=False).split()
        if ids:
            docker_cli("rm", "-f", *ids, check=False)
        for ref in (f"{h.app}-img:v1", f"{h.app}-img:broken"):
            docker_cli("rmi", ref, check=False)


def write_app(root: Path, h: Harness, url: str) -> Path:
    """A haloy.yaml that builds from the test image, with hooks writing to hooks.log."""
    (root / "app").mkdir(parents=True)
    (root / "app" / "Dockerfile").write_text(
        f"FROM {TEST_IMAGE}:v1\nARG GREETING\nCOPY built /www/built\n"
    )
    (root / "app" / "built").write_text("built by haloy deploy\n")
    (root / "broken").mkdir()
    (root / "broken" / "Dockerfile").write_text(
        f'FROM {TEST_IMAGE}:v1\nCMD ["sh", "-c", "echo boom-from-app; exit 3"]\n'
    )
    cfg = root / "haloy.yaml"
    cfg.write_text(f"""
server: {url}
health_check_path: {HEALTH}
domains:
  - {DOMAIN}
global_pre_deploy:
  - echo global-pre >> hooks.log
global_post_deploy:
  - echo global-post >> hooks.log
targets:
  good:
    name: {h.app}
    image:
      repository: {h.app}-img
      tag: v1
      build_config:
        context: app
        args:
          - name: GREETING
            value: hi
    env:
      - name: GREETING
        value: hello
    pre_deploy:
      - echo pre-good >> hooks.log
    post_deploy:
      - echo post-good >> hooks.log
""")
    (root / "broken" / "haloy.yaml").write_text(f"""
server: {url}
health_check_path: {HEALTH}
domains: [{DOMAIN}]
targets:
  broken:
    name: {h.app}
    image:
      repository: {h.app}-img
      tag: broken
      build_config: {{}}
""")
    return cfg


async def test_deploy_status_rollback_stop(
    tmp_path: Path, test_image: str, docker_network: str, docker_cleanup: str,
    proxy_factory: Callable[..., ProxyProcess],
) -> None:
    proxy = proxy_factory("--no-access-log", https=False)
    async with deployer_harness(tmp_path, docker_network, docker_cleanup, proxy) as h, \
            served(h) as url:
        cfg = write_app(tmp_path / "project", h, url)
        env = cli_env(tmp_path, TOKEN)

        ok = await run_haloy("deploy", "-c", str(cfg), "-t", "good", "--shared-engine",
                             env=env)
        assert ok.code == 0, ok.out + ok.err
        assert "[good]" in ok.out and "succeeded" in ok.out
        assert "deployed" in ok.out and f"https://{DOMAIN}" in ok.out
        hooks = (tmp_path / "project" / "hooks.log").read_text().split()
        assert hooks == ["global-pre", "pre-good", "post-good", "global-post"]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{proxy.http_port}") as c:
            resp = await c.get("/", headers={"host": DOMAIN})
        assert resp.status_code == 200 and "v1" in resp.text
        first = h.store  # history: the id of the good deployment
        good_id = (await first.history(h.app))[0].id

        bad = await run_haloy("deploy", "-c", str(cfg.parent / "broken"), "--shared-engine",
                              "--deadline", "4", env=env)
        assert bad.code == 1, bad.out + bad.err
        assert "did not pass its health check" in bad.out  # the server's reason
        assert "boom-from-app" in bad.out  # the container's own log line, shown to the user
        assert "deploy failed for broken" in bad.err

        back = await run_haloy("rollback", good_id, "-c", str(cfg), "-t", "good", env=env)
        assert back.code == 0, back.out + back.err
        history = await h.store.history(h.app)
        assert history[0].rolled_back_from == good_id

        st = await run_haloy("rollback-targets", "-c", str(cfg), "-t", "good", env=env)
        assert st.code == 0 and good_id in st.out and "failed" in st.out

        stop = await run_haloy("stop", "-r", "-c", str(cfg), "-t", "good", env=env)
        assert stop.code == 0, stop.err
        assert "removed 1 container(s)" in stop.out
        assert h.containers() == []


async def test_deploy_json_and_auth_precheck(
    tmp_path: Path, test_image: str, docker_network: str, docker_cleanup: str,
    proxy_factory: Callable[..., ProxyProcess],
) -> None:
    proxy = proxy_factory("--no-access-log", https=False)
    async with deployer_harness(tmp_path, docker_network, docker_cleanup, proxy) as h, \
            served(h) as url:
        cfg = write_app(tmp_path / "project", h, url)
        wrong = await run_haloy("deploy", "-c", str(cfg), "-a", "--shared-engine",
                                env=cli_env(tmp_path, "wrong-token-0123456789"))
        assert wrong.code == 1 and "rejected the API token" in wrong.err
        # The pre-check ran before anything expensive: no hook, no build.
        assert not (tmp_path / "project" / "hooks.log").exists()
        assert docker_cli("image", "ls", "-q", f"{h.app}-img") == ""

        res = await run_haloy("deploy", "-c", str(cfg), "-t", "good", "--shared-engine",
                              "--json", env=cli_env(tmp_path, TOKEN))
        assert res.code == 0, res.err
        [outcome] = json.loads(res.out)
        assert outcome["status"] == "succeeded" and outcome["target"] == "good"
        assert "build" in outcome["timings"]


async def test_deploy_needs_targets_choice(tmp_path: Path) -> None:
    cfg = tmp_path / "haloy.yaml"
    cfg.write_text("image: x\nserver: http://127.0.0.1:1\ntargets:\n  a: {}\n  b: {}\n")
    res = await run_haloy("deploy", "-c", str(cfg), env=cli_env(tmp_path))
    assert res.code == 2 and "-t NAME or use --all" in res.err


async def test_failing_hook_stops_with_its_output(tmp_path: Path) -> None:
    lines: list[str] = []
    with pytest.raises(HaloyError) as info:
        await run_hooks("pre_deploy", ["echo fine", "echo hook-said-this; exit 7", "echo never"],
                        tmp_path, {"PATH": "/bin:/usr/bin"}, lines.append)
    assert "exit 7" in info.value.message and "hook-said-this" in info.value.message
    assert lines == ["pre_deploy: echo fine", "  fine", "pre_deploy: echo hook-said-this; exit 7"]


async def test_multi_target_deploys_to_two_servers_in_parallel(
    tmp_path: Path, test_image: str, docker_network: str, docker_cleanup: str,
    proxy_factory: Callable[..., ProxyProcess],
) -> None:
    proxies = [proxy_factory("--no-access-log", https=False, data_dir=tmp_path / f"p{i}")
               for i in range(2)]
    async with deployer_harness(tmp_path / "s1", docker_network, docker_cleanup,
                                proxies[0]) as h1, \
            deployer_harness(tmp_path / "s2", docker_network, docker_cleanup,
                             proxies[1]) as h2, served(h1) as url1, served(h2) as url2:
        cfg = tmp_path / "multi" / "haloy.yaml"
        cfg.parent.mkdir()
        cfg.write_text(f"""
image: {{repository: {TEST_IMAGE}, tag: v2, pull_policy: never}}
health_check_path: {HEALTH}
targets:
  east: {{name: {h1.app}, server: "{url1}", domains: [east.test]}}
  west: {{name: {h2.app}, server: "{url2}", domains: [west.test], replicas: 2}}
""")
        res = await run_haloy("deploy", "-c", str(cfg), "--all", env=cli_env(tmp_path, TOKEN))
        assert res.code == 0, res.out + res.err
        assert "[east]" in res.out and "[west]" in res.out
        assert len(h1.containers()) == 1 and len(h2.containers()) == 2
        for proxy, host in ((proxies[0], "east.test"), (proxies[1], "west.test")):
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{proxy.http_port}") as c:
                resp = await c.get("/", headers={"host": host})
            assert resp.status_code == 200 and "v2" in resp.text

        st = await run_haloy("status", "-c", str(cfg), "-a", "--json",
                             env=cli_env(tmp_path, TOKEN))
        assert st.code == 0, st.err
        assert [t["target"] for t in json.loads(st.out)] == ["east", "west"]


async def test_remote_server_gets_layers_then_a_clear_error(
    tmp_path: Path, test_image: str, docker_network: str, docker_cleanup: str,
    proxy_factory: Callable[..., ProxyProcess],
) -> None:
    proxy = proxy_factory("--no-access-log", https=False)
    layers = LayerStore(tmp_path / "layers", min_free_bytes=0)
    async with deployer_harness(tmp_path, docker_network, docker_cleanup, proxy) as h, \
            served(h, layers) as url:
        cfg = write_app(tmp_path / "project", h, url)
        res = await run_haloy("deploy", "-c", str(cfg), env=cli_env(tmp_path, TOKEN))
        assert res.code == 1, res.out + res.err
        assert "uploaded" not in res.out  # it failed after the upload, before the deploy
        assert "cannot assemble them into an image yet" in res.out
        assert "--shared-engine" in res.out
        stored = list((tmp_path / "layers" / "sha256").iterdir())
        assert len(stored) == 2  # the test image's layer and the build's COPY layer
        assert await h.store.history(h.app) == []  # nothing was deployed


async def test_remote_server_gets_layers_assembles_and_deploys(
    tmp_path: Path, test_image: str, docker_network: str, docker_cleanup: str,
    proxy_factory: Callable[..., ProxyProcess],
) -> None:
    proxy = proxy_factory("--no-access-log", https=False)
    layers = LayerStore(tmp_path / "layers", min_free_bytes=0)
    async with deployer_harness(tmp_path, docker_network, docker_cleanup, proxy) as h, \
            served(h, layers, h.runtime.images) as url:
        cfg = write_app(tmp_path / "project", h, url)
        env = cli_env(tmp_path, TOKEN)
        res = await run_haloy("deploy", "-c", str(cfg), env=env)
        assert res.code == 0, res.out + res.err
        assert "uploaded 2 layer(s)" in res.out and "succeeded" in res.out
        assert len(list((tmp_path / "layers" / "sha256").iterdir())) == 2
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{proxy.http_port}") as c:
            resp = await c.get("/built", headers={"host": DOMAIN})
        assert resp.status_code == 200 and "built by haloy deploy" in resp.text
        # A second deploy finds every layer on the server and sends nothing.
        again = await run_haloy("deploy", "-c", str(cfg), env=env)
        assert again.code == 0, again.out + again.err
        assert "uploaded 0 layer(s), 0 bytes" in again.out
