"""History, rollback by digest, one deployment per app at a time, stop."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from haloy.daemon.deployer import DeployConflict
from haloy.store import Status
from tests.daemon.deployer_harness import deployer_harness
from tests.fixtures.docker import TEST_IMAGE, docker_cli
from tests.fixtures.proxy import ProxyProcess


def image_id(ref: str) -> str:
    return docker_cli("image", "inspect", "-f", "{{.Id}}", ref)


async def test_rollback_restores_the_previous_digest(
    tmp_path: Path, test_image: str, docker_network: str, docker_cleanup: str,
    proxy_factory: Callable[..., ProxyProcess],
) -> None:
    proxy = proxy_factory("--no-access-log", https=False)
    async with deployer_harness(tmp_path, docker_network, docker_cleanup, proxy) as h:
        v1 = await h.deploy("v1", replicas=2, env={"GREETING": "s3cret"})
        v2 = await h.deploy("v2", replicas=2)
        assert v1.image_digest == image_id(f"{TEST_IMAGE}:v1")
        assert v2.image_digest == image_id(f"{TEST_IMAGE}:v2")
        # History keeps env names, never values (they may be secrets).
        assert v1.config["spec"]["env"] == ["GREETING"] and "s3cret" not in json.dumps(v1.config)

        started = await h.deployer.rollback(h.app, v1.id, env={"GREETING": "s3cret"})
        back = await h.deployer.wait(started.id)
        assert back.status is Status.SUCCEEDED, h.stream(back.id)[-1]
        assert back.rolled_back_from == v1.id
        assert back.image_digest == v1.image_digest
        assert back.config["spec"]["replicas"] == 2

        history = {d.id: d.status for d in await h.store.history(h.app)}
        assert history == {
            back.id: Status.SUCCEEDED, v2.id: Status.ROLLED_BACK, v1.id: Status.SUCCEEDED,
        }
        env = docker_cli("inspect", "-f", "{{json .Config.Env}}", h.containers()[0])
        assert "GREETING=s3cret" in env and "HALOY_REPLICA_ID=" in env
        async with h.load() as load:
            while load.requests < 10:
                await load.served.wait()
                load.served.clear()
        assert load.versions() == {"v1"} and load.failures == []


async def test_second_deploy_of_an_app_is_refused_while_one_runs(
    tmp_path: Path, test_image: str, docker_network: str, docker_cleanup: str,
    proxy_factory: Callable[..., ProxyProcess],
) -> None:
    proxy = proxy_factory("--no-access-log", https=False)
    async with deployer_harness(tmp_path, docker_network, docker_cleanup, proxy) as h:
        running = await h.deployer.submit(h.spec("v1"))
        with pytest.raises(DeployConflict) as refused:
            await h.deployer.submit(h.spec("v2"))
        assert refused.value.status == 409 and refused.value.running == running.id
        with pytest.raises(DeployConflict):
            await h.deployer.stop_app(h.app)
        assert (await h.deployer.wait(running.id)).status is Status.SUCCEEDED
        # Once it ended, the next one is accepted; only two deployments were recorded.
        after = await h.deploy("v2")
        assert after.status is Status.SUCCEEDED
        assert len(await h.store.history(h.app)) == 2


async def test_history_is_pruned_and_stop_removes_containers(
    tmp_path: Path, test_image: str, docker_network: str, docker_cleanup: str,
    proxy_factory: Callable[..., ProxyProcess],
) -> None:
    proxy = proxy_factory("--no-access-log", https=False)
    async with deployer_harness(tmp_path, docker_network, docker_cleanup, proxy) as h:
        ids = [(await h.deploy(v, history_count=2)).id for v in ("v1", "v2", "v1")]
        kept = [d.id for d in await h.store.history(h.app)]
        assert kept == [ids[2], ids[1]]
        tags = docker_cli("image", "ls", "--format", "{{.Tag}}", h.app).split()
        assert sorted(tags) == sorted(i.lower() for i in kept)

        stopped = await h.deployer.stop_app(h.app, remove_containers=True)
        assert len(stopped) == 1 and h.containers() == []
        assert proxy.status()["routes"] == []
