"""Publisher: file first, then push; generations only on change; re-push when the proxy differs."""

from __future__ import annotations

import asyncio
from pathlib import Path

from haloy.config.paths import Paths
from haloy.daemon.publisher import Publisher
from haloy.wire.snapshot import Backend, Route, Snapshot, read_snapshot
from tests.fixtures.docker import ControlStub


def snap(*domains: str) -> Snapshot:
    backend = Backend(address="10.0.0.1", port=8080, deployment_id="01A")
    routes = tuple(Route(app=d.split(".")[0], domain=d, backends=(backend,)) for d in domains)
    return Snapshot(routes=routes)


async def test_generations_file_push_and_resync_after_proxy_restart(tmp_path: Path) -> None:
    paths = Paths(tmp_path / "etc", tmp_path / "data")
    wanted = snap("a.test")
    pub = Publisher(paths.snapshot_file, paths.control_socket, lambda: wanted, resync_interval=0.05)

    # No proxy yet: the file is still written.
    first = await pub.publish()
    assert first.generation == 1 and pub.proxy_hash is None
    assert read_snapshot(paths.snapshot_file) == first
    assert (await pub.publish()).generation == 1, "no change, no new generation"

    stub = await ControlStub(paths.control_socket).start()
    task = asyncio.create_task(pub.run())
    try:
        pub.request()
        await stub.wait_for(lambda s: s["generation"] == 1, timeout=5)
        wanted = snap("a.test", "b.test")
        pub.request()
        pushed = await stub.wait_for(lambda s: s["generation"] == 2, timeout=5)
        assert [r["domain"] for r in pushed["routes"]] == ["a.test", "b.test"]

        # The proxy restarts and knows nothing: the resync loop notices and pushes again.
        await stub.stop()
        paths.control_socket.unlink()
        stub = await ControlStub(paths.control_socket).start()
        await stub.wait_for(lambda s: s["generation"] == 2, timeout=5)
        assert stub.config_hash == read_snapshot(paths.snapshot_file).config_hash  # type: ignore[union-attr]
    finally:
        task.cancel()
        await stub.stop()

    # A new publisher (haloyd restarted) resumes numbering from the file.
    again = Publisher(paths.snapshot_file, paths.control_socket, lambda: wanted)
    assert (await again.publish()).generation == 2
    wanted = snap("c.test")
    assert (await again.publish()).generation == 3
