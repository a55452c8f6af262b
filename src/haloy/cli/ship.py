"""Ships a local image to a server: nothing for a shared engine, else only its missing layers.

    docker save ref → <tmp>/manifest.json + layers (digest = sha256 of each layer tar, the
    image config's rootfs.diff_ids) → POST layers/check (with the ordered diff_ids when the
    server also counts its engine's layer chains) → PUT each missing layer in parallel
    (rich progress: bytes, speed, ETA) → the server assembles the image (`images.assemble`).
"""

from __future__ import annotations

import asyncio
import json
import tarfile
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit

from haloy.cli.api_client import ApiClient
from haloy.errors import ApiError, HaloyError, RuntimeError_
from haloy.wire.api import ENGINE_LAYERS_CAPABILITY

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
# A haloyd whose engine is the one this CLI builds with says so with this capability.
ASSEMBLE_CAPABILITY = "images.assemble"
# Parallel uploads: enough to fill a link, few enough not to thrash the server's disk.
UPLOAD_PARALLELISM = 4
# Retries per layer: the server verifies the digest, so a retry is always safe.
UPLOAD_ATTEMPTS = 3
CHUNK_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Layer:
    """One layer of a saved image: its digest, its tar file and its size."""

    digest: str
    path: Path
    size: int


class Shipped(NamedTuple):
    """What shipping an image took: layers and bytes sent, layers the server already had."""

    layers: int
    sent_bytes: int
    had: int


def is_loopback(url: str) -> bool:
    """True when the server URL names this machine."""
    return (urlsplit(url).hostname or "") in LOOPBACK_HOSTS


def shares_engine(
    url: str, server_engine: str | None, local_engine: str | None, forced: bool
) -> bool:
    """Whether the server deploys to the engine this CLI built on (then nothing is uploaded).

    Only a loopback server can: the same engine ID alone could be a cloned VM image.
    """
    if forced:
        return True
    return is_loopback(url) and server_engine is not None and server_engine == local_engine


def saved_config(root: Path) -> str:
    """The image config of an image unpacked from `docker save`, byte for byte."""
    manifest = json.loads((root / "manifest.json").read_text())
    name: str = manifest[0]["Config"]
    return (root / name).read_text()


def read_saved_image(root: Path) -> list[Layer]:
    """The layers of an image unpacked from `docker save` (manifest + config diff_ids)."""
    manifest = json.loads((root / "manifest.json").read_text())
    if not isinstance(manifest, list) or len(manifest) != 1:
        raise RuntimeError_("docker save wrote an unexpected manifest (expected one image)")
    entry = manifest[0]
    config = json.loads((root / entry["Config"]).read_text())
    diff_ids: list[str] = config["rootfs"]["diff_ids"]
    paths = [root / p for p in entry["Layers"]]
    if len(diff_ids) != len(paths):
        raise RuntimeError_("docker save wrote layers that do not match the image config")
    seen: dict[str, Layer] = {}
    for digest, path in zip(diff_ids, paths, strict=True):
        seen.setdefault(digest, Layer(digest, path, path.stat().st_size))
    return list(seen.values())


async def save_image(ref: str, into: Path) -> list[Layer]:
    """`docker save` an image and unpack it into `into`; return its layers."""
    into.mkdir(parents=True, exist_ok=True)
    archive = into / "image.tar"
    proc = await asyncio.create_subprocess_exec(
        "docker", "save", "--output", str(archive), ref,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError_(f"docker save {ref} failed: {err.decode().strip()}",
                            hint="check that the image exists locally (`docker image ls`)")

    def unpack() -> None:
        with tarfile.open(archive) as tar:
            tar.extractall(into / "image", filter="data")
        archive.unlink()

    await asyncio.to_thread(unpack)
    return read_saved_image(into / "image")


async def _chunks(path: Path, progress: Callable[[int], None]) -> AsyncIterator[bytes]:
    with path.open("rb") as f:
        while chunk := await asyncio.to_thread(f.read, CHUNK_BYTES):
            progress(len(chunk))
            yield chunk


async def missing_layers(
    api: ApiClient, layers: list[Layer], diff_ids: list[str] | None = None
) -> list[Layer]:
    """The layers the server lacks; with `diff_ids` it also counts its engine's chains."""
    answer = await api.layers_check([layer.digest for layer in layers], diff_ids)
    lacking = set(answer.missing)
    return [layer for layer in layers if layer.digest in lacking]


async def upload_layers(
    api: ApiClient, layers: list[Layer], progress: Callable[[int], None],
    diff_ids: list[str] | None = None,
) -> list[Layer]:
    """Upload the layers the server lacks (parallel, retried); return those uploaded."""
    missing = await missing_layers(api, layers, diff_ids)
    await send_layers(api, missing, progress)
    return missing


async def send_layers(
    api: ApiClient, missing: list[Layer], progress: Callable[[int], None]
) -> None:
    """PUT each layer, a few at a time, each retried; the first failure stops them all."""
    gate = asyncio.Semaphore(UPLOAD_PARALLELISM)

    async def one(layer: Layer) -> None:
        async with gate:
            for attempt in range(1, UPLOAD_ATTEMPTS + 1):
                sent = 0

                def count(n: int) -> None:
                    nonlocal sent
                    sent += n
                    progress(n)

                try:
                    await api.put_layer(layer.digest, _chunks(layer.path, count), layer.size)
                    return
                except ApiError as err:
                    progress(-sent)  # the retry sends these bytes again
                    # A 4xx other than a timeout is the server refusing: retrying cannot help.
                    refused = err.status is not None and 400 <= err.status < 500
                    if attempt == UPLOAD_ATTEMPTS or (refused and err.status != 408):
                        raise

    try:
        async with asyncio.TaskGroup() as tg:
            for layer in missing:
                tg.create_task(one(layer))
    except* HaloyError as group:
        # The others were cancelled; the user needs the first reason, not a group of them.
        raise group.exceptions[0] from None


async def ship_layers(
    api: ApiClient, ref: str, capabilities: list[str], progress: Callable[[int, int], None]
) -> Shipped:
    """Save `ref`, upload the layers the server lacks, assemble it there.

    `progress(advance, total)` is called with bytes sent; total is the bytes to send.
    """
    with tempfile.TemporaryDirectory(prefix="haloy-image-") as tmp:
        layers = await save_image(ref, Path(tmp))
        config = saved_config(Path(tmp) / "image")
        # The order makes the engine's layers count: the same layer after another parent
        # is a different chain. An older haloyd refuses the field, so ask first.
        order = json.loads(config)["rootfs"]["diff_ids"]
        diff_ids = order if ENGINE_LAYERS_CAPABILITY in capabilities else None
        sent = await missing_layers(api, layers, diff_ids)
        total = sum(layer.size for layer in sent)
        await send_layers(api, sent, lambda n: progress(n, total))
        sent_bytes = sum(layer.size for layer in sent)
    if ASSEMBLE_CAPABILITY not in capabilities:
        raise ApiError(
            f"{api.base_url} stored the layers of {ref} but cannot assemble them into an "
            f"image yet (it lacks the {ASSEMBLE_CAPABILITY!r} capability)",
            hint="upgrade haloyd; or deploy on the server's own engine with --shared-engine, "
            "or use `push: registry`",
        )
    await api.assemble_image(ref, config)
    return Shipped(len(sent), sent_bytes, len(layers) - len(sent))
