"""Rolling and replace deploys against real dockerd and a real haloy-proxy, under load."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from haloy.store import Status
from haloy.wire.api import EventKind
from tests.daemon.deployer_harness import deployer_harness
from tests.fixtures.docker import docker_cli
from tests.fixtures.proxy import ProxyProcess


def _starts_and_stops(app: str, since: float) -> list[tuple[str, str]]:
    """(action, deployment id) of the app's container start/stop events since `since`."""
    out = docker_cli(
        "events", "--since", f"{since:.3f}", "--until", f"{time.time() + 0.5:.3f}",
        "--filter", f"label=dev.haloy.appName={app}",
        "--filter", "event=start", "--filter", "event=stop",
        "--format", '{{.Action}} {{index .Actor.Attributes "dev.haloy.deployment-id"}}',
    )
    return [(line.split()[0], line.split()[1]) for line in out.splitlines() if line.strip()]


async def test_rolling_deploy_of_three_replicas_under_load(
    tmp_path: Path, test_image: str, docker_network: str, docker_cleanup: str,
    proxy_factory: Callable[..., ProxyProcess],
) -> None:
    proxy = proxy_factory("--no-access-log", https=False)
    async with deployer_harness(tmp_path, docker_network, docker_cleanup, proxy) as h:
        first = await h.deploy("v1", replicas=3)
        assert first.status is Status.SUCCEEDED, h.stream(first.id)[-1]
        assert len(h.containers("status=running")) == 3

        since = time.time()
        async with h.load() as load:
            second = await h.deploy("v2", replicas=3)
        assert second.status is Status.SUCCEEDED, h.stream(second.id)[-1]
        assert load.failures == [], load.failures[:5]
        assert load.versions() <= {"v1", "v2"} and "v1" in load.versions()

        # Replaced one at a time: new i started, then old i stopped, in turn.
        events = _starts_and_stops(h.app, since)
        assert events == [
            ("start", second.id), ("stop", first.id),
            ("start", second.id), ("stop", first.id),
            ("start", second.id), ("stop", first.id),
        ]
        # Old containers are gone; the new version alone answers.
        assert h.containers(f"label=dev.haloy.deployment-id={first.id}") == []
        assert len(h.containers("status=running")) == 3
        async with h.load() as after:
            while after.requests < 20:
                await after.served.wait()
                after.served.clear()
        assert after.versions() == {"v2"} and after.failures == []

        kinds = [e.kind for e in h.stream(second.id)]
        assert kinds[-1] is EventKind.SUCCEEDED and kinds.count(EventKind.SUCCEEDED) == 1


async def test_replace_deploy_with_hold_under_load(
    tmp_path: Path, test_image: str, docker_network: str, docker_cleanup: str,
    proxy_factory: Callable[..., ProxyProcess],
) -> None:
    proxy = proxy_factory("--no-access-log", https=False)
    async with deployer_harness(tmp_path, docker_network, docker_cleanup, proxy) as h:
        first = await h.deploy("v1", replicas=2)
        assert first.status is Status.SUCCEEDED
        async with h.load() as load:
            second = await h.deploy("v2", replicas=2, strategy="replace")
        assert second.status is Status.SUCCEEDED, h.stream(second.id)[-1]
        assert load.failures == [], load.failures[:5]
        steps = [e.message for e in h.stream(second.id) if e.kind is EventKind.STEP]
        assert steps.index("hold") < steps.index("start new 1") < steps.index("release")
        route = proxy.status()["routes"][0]
        assert {b["deployment_id"] for b in route["backends"]} == {second.id}
        assert len(h.containers()) == 2
