"""`scripts/demo` and `scripts/demo stop` for real, on their own ports, network and state dir."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.docker import docker_cli
from tests.fixtures.pebble import free_port

pytestmark = [pytest.mark.docker, pytest.mark.timeout(300)]

DEMO = Path(__file__).resolve().parent.parent / "scripts" / "demo"


@pytest.fixture
def demo_env(tmp_path: Path, docker_available: None) -> Iterator[dict[str, str]]:
    """Env overrides so the demo collides with nothing; `scripts/demo stop` at the end."""
    tag = uuid.uuid4().hex[:8]
    env = {k: v for k, v in os.environ.items() if not k.startswith("HALOY_")}
    env.update(
        HALOY_DEMO_STATE=str(tmp_path / "demo"),
        HALOY_DEMO_HTTP=f"127.0.0.1:{free_port()}",
        HALOY_DEMO_API=f"127.0.0.1:{free_port()}",
        HALOY_DEMO_NETWORK=f"haloy-demo-{tag}",
        HALOY_DEMO_APP=f"demo{tag}",
    )
    yield env
    subprocess.run([str(DEMO), "stop"], env=env, capture_output=True, timeout=120)


def test_demo_deploys_twice_without_failed_requests_then_stops(demo_env: dict[str, str]) -> None:
    started = subprocess.run(
        [str(DEMO)], env=demo_env, capture_output=True, text=True, timeout=240
    )
    assert started.returncode == 0, started.stdout + started.stderr
    out = started.stdout
    assert "Hello from haloy, v1" in out
    assert "Hello from haloy, v2" in out
    assert "failed: 0" in out, out
    # The demo must have shipped both versions with `haloy deploy`, not its docker-run fallback.
    assert "haloy deploy did not work" not in started.stdout + started.stderr, started.stderr
    assert "scripts/demo stop" in out
    state = Path(demo_env["HALOY_DEMO_STATE"])
    assert (state / "haloyd.pid").exists() and (state / "proxy.pid").exists()

    stopped = subprocess.run(
        [str(DEMO), "stop"], env=demo_env, capture_output=True, text=True, timeout=120
    )
    assert stopped.returncode == 0, stopped.stderr
    assert not (state / "haloyd.pid").exists() and not (state / "proxy.pid").exists()
    app = demo_env["HALOY_DEMO_APP"]
    left = docker_cli("ps", "-aq", "--filter", f"label=dev.haloy.appName={app}", check=False)
    assert left.strip() == ""
