"""Disk nearly full during an image upload: 507 with a hint, nothing half-stored, app serves.

haloyd's layers dir is a size-limited tmpfs just above the space haloyd keeps spare (512 MiB).
Three uploads of a layer too big for it: one that declares its size (refused before a byte is
written), one streamed without a length (refused once it passes the room left), and one during
which another writer fills the disk (ENOSPC). Each must answer 507 with a hint; the layer store
keeps nothing of them, the layer stays missing for an assemble, the deployed version keeps
serving under load, and a small upload afterwards succeeds.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from haloy.daemon.api.layers import DEFAULT_MIN_FREE_BYTES
from tests.daemon.deployer_harness import DOMAIN
from tests.e2e.loadgen import LoadGen
from tests.e2e.scale import record, size
from tests.fixtures.haloyd_server import running_haloyd
from tests.fixtures.peers import peer_missing
from tests.fixtures.polling import await_until
from tests.fixtures.proxy import ProxyProcess

pytestmark = pytest.mark.docker

MIB = 1024 * 1024
# Room for 8 MiB beyond the spare: a 24 MiB layer cannot fit.
TMPFS_BYTES = DEFAULT_MIN_FREE_BYTES + 8 * MIB
LAYER_BYTES = 24 * MIB
OCTETS = {"content-type": "application/octet-stream"}
FILLER = "filler"  # another writer's file, not haloyd's


@pytest.fixture
def small_layers_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of TMPFS_BYTES mounted where haloyd keeps uploaded layers."""
    if os.geteuid() != 0:
        peer_missing("mounting a tmpfs for the layers dir needs root")
    layers = tmp_path / "data" / "layers"
    layers.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_BYTES}", "tmpfs", str(layers)],
                   check=True)
    try:
        yield layers
    finally:
        subprocess.run(["umount", "-l", str(layers)], check=False)


def _layer(n: int, seed: bytes) -> tuple[str, bytes]:
    data = (seed * (n // len(seed) + 1))[:n]
    return "sha256:" + hashlib.sha256(data).hexdigest(), data


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    for i in range(0, len(data), MIB):
        yield data[i:i + MIB]


async def _fill_mid_upload(data: bytes, layers: Path) -> AsyncIterator[bytes]:
    """Send one chunk; once haloyd writes the layer, fill the disk; then send the rest."""
    yield data[:MIB]
    tmp = layers / "tmp"
    await await_until("haloyd to write the upload",
                      lambda: tmp.is_dir() and any(tmp.iterdir()), interval=0.01)
    free = shutil.disk_usage(layers).free
    fd = os.open(layers / FILLER, os.O_CREAT | os.O_WRONLY, 0o600)
    try:
        os.posix_fallocate(fd, 0, free - 2 * MIB)  # less than the 8 MiB of room left
    finally:
        os.close(fd)
    for i in range(MIB, len(data), MIB):
        yield data[i:i + MIB]


def _stored(layers: Path) -> list[str]:
    return sorted(str(p.relative_to(layers)) for p in layers.rglob("*") if p.is_file())


async def test_upload_on_a_nearly_full_disk_507_and_app_keeps_serving(
    tmp_path: Path, test_image: str, docker_network: str, docker_cleanup: str,
    proxy_factory: Callable[..., ProxyProcess], small_layers_disk: Path,
) -> None:
    rounds = int(size(1, 10))
    proxy = proxy_factory("--no-access-log", https=False, data_dir=tmp_path / "data")
    assert proxy.paths.layers_dir == small_layers_disk
    async with running_haloyd(tmp_path, proxy, docker_network, f"t{docker_cleanup}") as hd:
        _, kind = await hd.deploy(hd.body("v1", replicas=1))
        assert kind == "succeeded"
        url = f"http://127.0.0.1:{proxy.http_port}"
        answers: list[tuple[str, int]] = []
        async with LoadGen(url, DOMAIN, max_requests=100_000, max_seconds=60 * rounds) as load:
            for i in range(rounds):
                digest, data = _layer(LAYER_BYTES, b"layer %d " % i)
                put = f"/v1/images/layers/{digest}"
                for how, content, why in (
                    # refused before a byte is written
                    ("declared", data, "needed"),
                    # no length: refused when it passes the room left
                    ("streamed", _chunks(data), "the upload passed"),
                    # ENOSPC from another writer
                    ("disk filled mid-upload", _fill_mid_upload(data, small_layers_disk),
                     "filled up"),
                ):
                    resp = await hd.client.put(put, content=content, headers=OCTETS)
                    answers.append((how, resp.status_code))
                    (small_layers_disk / FILLER).unlink(missing_ok=True)
                    assert resp.status_code == 507, (how, resp.status_code, resp.text)
                    problem = resp.json()
                    assert problem["hint"] and problem["error"] and problem["detail"], problem
                    assert why in problem["detail"], (how, problem)
                    assert _stored(small_layers_disk) == [], how  # nothing half-written kept
                # No half-loaded image: the layer is still missing for an assemble.
                check = await hd.client.post("/v1/images/layers/check",
                                             json={"digests": [digest]})
                assert check.status_code == 200, check.text
                assert digest in str(check.json()), check.json()
            # The disk is usable again for what fits.
            small, data = _layer(64 * 1024, b"small ")
            resp = await hd.client.put(f"/v1/images/layers/{small}", content=_chunks(data),
                                       headers=OCTETS)
            assert resp.status_code == 201, resp.text
            await load.wait_sent(load.report.sent + 20)
        record(f"layer upload on a nearly full disk x{rounds} (declared, streamed, filled)",
               load.report, answers=sorted(set(answers)))
        assert load.report.failures == [], load.report.describe_failures()
        assert {b.split()[-1] for b in load.report.bodies()} == {"v1"}
