"""Failed deploys revert to the previous version with no failed request; crash recovery."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from haloy.daemon.deploy_spec import container_spec
from haloy.runtime.containers import Containers
from haloy.store import INTERRUPTED, Status
from haloy.wire.api import EventKind
from tests.daemon.deployer_harness import deployer_harness
from tests.fixtures.docker import TEST_IMAGE, docker_cli
from tests.fixtures.proxy import ProxyProcess

BAD = f"{TEST_IMAGE}:unhealthy"


@pytest.fixture(scope="module")
def unhealthy_image(test_image: str) -> Iterator[str]:
    """v2 with /tmp/unhealthy present (its health check answers 500) and verbose request logs."""
    with tempfile.TemporaryDirectory(prefix="haloy-bad-") as tmp:
        (Path(tmp) / "unhealthy").write_text("")
        (Path(tmp) / "Dockerfile").write_text(
            f"FROM {TEST_IMAGE}:v2\nCOPY unhealthy /tmp/unhealthy\n"
            'CMD ["httpd", "-f", "-vv", "-p", "8080", "-h", "/www"]\n'
        )
        docker_cli("build", "-q", "-t", BAD, tmp, timeout=120)
    yield BAD
    docker_cli("rmi", BAD, check=False)


@pytest.mark.parametrize("strategy", ["rolling", "replace"])
async def test_unhealthy_version_keeps_traffic_on_the_old_one(
    strategy: str, tmp_path: Path, unhealthy_image: str, docker_network: str,
    docker_cleanup: str, proxy_factory: Callable[..., ProxyProcess],
) -> None:
    proxy = proxy_factory("--no-access-log", https=False)
    async with deployer_harness(tmp_path, docker_network, docker_cleanup, proxy) as h:
        first = await h.deploy("v1", replicas=2)
        assert first.status is Status.SUCCEEDED
        old = h.containers()
        async with h.load() as load:
            dep = await h.deployer.submit(
                h.spec("unhealthy", replicas=2, strategy=strategy, deadline_s=8.0)
            )
            failed = await h.deployer.wait(dep.id)
        assert failed.status is Status.FAILED
        assert "health check" in (failed.reason or "")
        assert load.failures == [], load.failures[:5]
        assert load.versions() == {"v1"}

        end = h.stream(dep.id)[-1]
        assert end.kind is EventKind.FAILED and end.data is not None
        assert any("cgi-bin/health" in line for line in end.data["logs"]), end.data
        assert end.data["revertProblems"] == []
        # Every replica is back on the previous version; the new ones are gone.
        assert h.containers("status=running") == old
        assert h.containers(f"label=dev.haloy.deployment-id={dep.id}") == []
        route = proxy.status()["routes"][0]
        assert {(b["deployment_id"], b["state"]) for b in route["backends"]} == {
            (first.id, "active")
        }


async def test_interrupted_deploy_converges_on_restart(
    tmp_path: Path, test_image: str, docker_network: str, docker_cleanup: str,
    proxy_factory: Callable[..., ProxyProcess],
) -> None:
    proxy = proxy_factory("--no-access-log", https=False)
    async with deployer_harness(tmp_path, docker_network, docker_cleanup, proxy) as h:
        first = await h.deploy("v1", replicas=1)
        (old,) = h.containers()
        # What a haloyd killed mid-rolling leaves: a running deployment, its new container
        # up, the old one stopped.
        spec = h.spec("v2")
        dep = await h.store.record(h.app, spec.image, spec.stored())
        await h.store.update(dep.id, Status.RUNNING)
        ops = Containers(h.runtime.client, docker_network)
        await ops.run(container_spec(spec, dep.id, 1, spec.image, docker_network))
        docker_cli("stop", "-t", "1", old)

        assert await h.deployer.recover() == [dep.id]
        row = await h.store.get(dep.id)
        assert row is not None and row.status is Status.FAILED and row.reason == INTERRUPTED
        assert h.containers("status=running") == [old]
        assert h.containers(f"label=dev.haloy.deployment-id={dep.id}") == []
        async with h.load() as load:
            while load.requests < 10:
                await load.served.wait()
                load.served.clear()
        assert load.versions() == {"v1"} and load.failures == []
        assert first.status is Status.SUCCEEDED


async def test_static_naming_keeps_the_app_name_across_deploys_and_reverts(
    tmp_path: Path, unhealthy_image: str, docker_network: str, docker_cleanup: str,
    proxy_factory: Callable[..., ProxyProcess],
) -> None:
    proxy = proxy_factory("--no-access-log", https=False)
    async with deployer_harness(tmp_path, docker_network, docker_cleanup, proxy) as h:
        static = {"strategy": "replace", "naming": "static"}

        def names() -> list[str]:
            return docker_cli("ps", "-a", "--format", "{{.Names}}", "--filter",
                              f"label=dev.haloy.appName={h.app}").split()

        first = await h.deploy("v1", **static)
        assert first.status is Status.SUCCEEDED
        assert names() == [h.app]
        second = await h.deploy("v2", **static)
        assert second.status is Status.SUCCEEDED, second.reason
        assert names() == [h.app]  # the replaced container is gone, the name moved on
        (current,) = h.containers("status=running")
        async with h.load() as load:
            bad = await h.deploy("unhealthy", deadline_s=8.0, **static)
        assert bad.status is Status.FAILED
        assert load.failures == [], load.failures[:5]  # the hold covered the gap
        assert load.versions() == {"v2"}
        # Reverted: the previous container runs again under the app's name.
        assert names() == [h.app]
        assert h.containers("status=running") == [current]
