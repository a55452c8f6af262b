"""`haloyd serve` as a real process: routes survive SIGTERM and SIGKILL restarts unchanged."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import pytest

from haloy.config.paths import Paths
from haloy.wire.snapshot import read_snapshot
from tests.fixtures.docker import ControlStub, backends_of, container_ip, run_app

pytestmark = pytest.mark.docker


async def start_haloyd(paths: Paths, network: str) -> asyncio.subprocess.Process:
    """Spawn `haloyd serve` with fast health checks on `network`."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from haloy.daemon.main import main; main()", "serve",
        "--config-dir", str(paths.config_dir), "--data-dir", str(paths.data_dir),
        "--network-name", network, "--health-interval", "0.2", "--health-fall", "2",
        "--health-rise", "2", "--health-timeout", "1",
        stderr=asyncio.subprocess.PIPE,
    )


async def stop(proc: asyncio.subprocess.Process, sig: int) -> tuple[int, str]:
    proc.send_signal(sig)
    async with asyncio.timeout(20):
        _, err = await proc.communicate()
    return proc.returncode or 0, err.decode()


async def test_restart_keeps_routes_identical(
    tmp_path: Path, test_image: str, docker_network: str, docker_cleanup: str
) -> None:
    paths = Paths(tmp_path / "etc", tmp_path / "data")
    stub = await ControlStub(paths.control_socket).start()
    procs: list[asyncio.subprocess.Process] = []
    try:
        procs.append(await start_haloyd(paths, docker_network))
        ids = [run_app(f"{test_image}:v1", docker_network, docker_cleanup) for _ in range(2)]
        want = sorted((container_ip(c, docker_network), "active") for c in ids)
        await stub.wait_for(lambda s: sorted(backends_of(s, "web.test") or []) == want)
        first_hash, first_generation = stub.config_hash, stub.generation

        for sig in (signal.SIGTERM, signal.SIGKILL):
            code, err = await stop(procs[-1], sig)
            if sig == signal.SIGTERM:
                assert code == 0, err
                assert "shutting down" in err
            pushes = stub.pushes
            procs.append(await start_haloyd(paths, docker_network))
            # The restarted haloyd pushes once it has rebuilt state from Docker alone.
            await stub.wait_for(lambda s, n=pushes: stub.pushes > n)
            assert (stub.config_hash, stub.generation) == (first_hash, first_generation)
            on_disk = read_snapshot(paths.snapshot_file)
            assert on_disk is not None and on_disk.config_hash == first_hash
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        await stub.stop()
