"""A `docker save`-style tar built on the fly from an image config and its layer files (pure).

docker load reads `manifest.json` → the config (`<sha256>.json`) → each layer tar in order; the
layers are the uncompressed tars the CLI uploaded, so their sha256 are the config's diff_ids.
"""

from __future__ import annotations

import hashlib
import json
import re
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BLOCK = 512
# Read layers in 1 MiB pieces: few syscalls, little memory per load.
_CHUNK = 1024 * 1024
# Docker reference, simplified: [registry[:port]/]path[:tag]; no digest form (load needs a tag).
_REF = re.compile(
    r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9.-]*[a-zA-Z0-9])?(?::[0-9]+)?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
    r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
)


class ImageSpecError(ValueError):
    """The reference or config cannot describe an image."""


@dataclass(frozen=True)
class ImageSpec:
    """A reference with its tag, the raw config and the layer digests it lists."""

    ref: str
    config: bytes
    diff_ids: tuple[str, ...]

    @property
    def config_name(self) -> str:
        """The config's file name in the tar: its own sha256."""
        return hashlib.sha256(self.config).hexdigest() + ".json"


def normalise_ref(ref: str) -> str:
    """`ref` with `:latest` when it has no tag; ImageSpecError when it is not a reference."""
    if not _REF.fullmatch(ref) or ".." in ref:
        raise ImageSpecError(f"{ref!r} is not an image reference like app:v1")
    last = ref.rsplit("/", 1)[-1]
    return ref if ":" in last else f"{ref}:latest"


def parse_spec(ref: str, config: str) -> ImageSpec:
    """Check the reference and the config's rootfs.diff_ids; return the spec."""
    try:
        parsed: Any = json.loads(config)
        diff_ids = parsed["rootfs"]["diff_ids"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ImageSpecError("the config is not an image config with rootfs.diff_ids") from exc
    if not isinstance(diff_ids, list) or not all(isinstance(d, str) for d in diff_ids):
        raise ImageSpecError("rootfs.diff_ids must be a list of layer digests")
    return ImageSpec(normalise_ref(ref), config.encode(), tuple(diff_ids))


def header(name: str, size: int) -> bytes:
    """One tar header block for a regular file."""
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o644
    return info.tobuf(format=tarfile.USTAR_FORMAT)


def padding(size: int) -> bytes:
    """Zeros filling a member's data to a whole block."""
    return b"\0" * (-size % BLOCK)


def member(name: str, data: bytes) -> bytes:
    """A small in-memory file as tar bytes."""
    return header(name, len(data)) + data + padding(len(data))


def layer_name(digest: str) -> str:
    """A layer's file name in the tar."""
    return f"{digest.removeprefix('sha256:')}/layer.tar"


def image_tar(spec: ImageSpec, layer_paths: dict[str, Path]) -> Iterator[bytes]:
    """The tar docker load needs, in pieces: config, layers (each once), then manifest.

    A layer without a path is left out: docker load takes it from the engine, which must
    have its chain (`layer_chains`); the manifest still names every layer.
    """
    names = [layer_name(d) for d in spec.diff_ids]
    yield member(spec.config_name, spec.config)
    written: set[str] = set()
    for digest, name in zip(spec.diff_ids, names, strict=True):
        if name in written or digest not in layer_paths:  # a repeat, or the engine's
            continue
        written.add(name)
        path = layer_paths[digest]
        with path.open("rb") as fh:
            size = path.stat().st_size
            yield header(name, size)
            sent = 0
            while sent < size:
                chunk = fh.read(min(_CHUNK, size - sent))
                if not chunk:
                    raise OSError(f"layer {digest} shrank while being read")
                sent += len(chunk)
                yield chunk
            yield padding(size)
    manifest = [{"Config": spec.config_name, "RepoTags": [spec.ref], "Layers": names}]
    yield member("manifest.json", json.dumps(manifest).encode())
    yield b"\0" * (2 * BLOCK)
