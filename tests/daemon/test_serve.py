"""`haloyd serve` as a real process: routes survive SIGTERM and SIGKILL restarts unchanged."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

from haloy.config.paths import Paths
from haloy.wire.snapshot import read_snapshot
from tests.fixtures.docker import ControlStub, backends_of, container_ip, run_app
from tests.fixtures.haloyd_server import FAST_HEALTH, HaloydServer, serving

pytestmark = pytest.mark.docker


async def test_restart_keeps_routes_identical(
    tmp_path: Path, test_image: str, docker_network: str, docker_cleanup: str
) -> None:
    paths = Paths(tmp_path / "etc", tmp_path / "data")
    stub = await ControlStub(paths.control_socket).start()
    hd = HaloydServer(paths, docker_network, tmp_path, serve_args=FAST_HEALTH)
    try:
        async with serving(hd, init=False):
            ids = [run_app(f"{test_image}:v1", docker_network, docker_cleanup) for _ in range(2)]
            want = sorted((container_ip(c, docker_network), "active") for c in ids)
            await stub.wait_for(lambda s: sorted(backends_of(s, "web.test") or []) == want)
            first_hash, first_generation = stub.config_hash, stub.generation

            for sig in (signal.SIGTERM, signal.SIGKILL):
                code, err = await hd.stop(sig), hd.log(tail=None)
                if sig == signal.SIGTERM:
                    assert code == 0, err
                    assert "shutting down" in err

                def pushed(_: dict[str, Any], before: int = stub.pushes) -> bool:
                    return stub.pushes > before

                await hd.spawn()
                # The restarted haloyd pushes once it has rebuilt state from Docker alone.
                await stub.wait_for(pushed)
                assert (stub.config_hash, stub.generation) == (first_hash, first_generation)
                on_disk = read_snapshot(paths.snapshot_file)
                assert on_disk is not None and on_disk.config_hash == first_hash
    finally:
        await stub.stop()
