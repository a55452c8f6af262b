"""Uploaded image layers on disk: `<layers>/sha256/<hex>`, written only once verified.

A body streams into `<layers>/tmp/` while its sha256 is computed; only a matching digest is
renamed into place (atomic on one filesystem), so a reader never sees a partial or wrong layer.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ulid import ULID

from haloy.daemon.api.problems import ApiProblem
from haloy.daemon.api.validate import digest_problem

# Keep this much disk free beyond an upload, so a layer cannot fill the disk Docker and the
# history database live on.
DEFAULT_MIN_FREE_BYTES = 512 * 1024 * 1024
# Write in 1 MiB pieces: few thread hops, little memory per upload.
_FLUSH_BYTES = 1024 * 1024


def check_digest(digest: str) -> str:
    """Return `digest` if valid, else raise a 400 ApiProblem."""
    problem = digest_problem(digest)
    if problem:
        raise ApiProblem(
            400, f"invalid layer digest {digest!r}", hint=problem, code="invalid_digest"
        )
    return digest


@dataclass(frozen=True)
class LayerFile:
    """One stored layer: digest, size, and when it was last uploaded or used (mtime)."""

    digest: str
    size: int
    last_used: float


class LayerStore:
    """Content-addressed layer files under one directory.

    A layer's mtime is its last use (upload, a check that found it, an assembly), which the
    layer prune goes by.
    """

    def __init__(self, root: Path, min_free_bytes: int = DEFAULT_MIN_FREE_BYTES) -> None:
        self.root = root
        self.min_free_bytes = min_free_bytes

    def path_for(self, digest: str) -> Path:
        """Where the layer with this (validated) digest lives."""
        return self.root / "sha256" / check_digest(digest).removeprefix("sha256:")

    def size_of(self, digest: str) -> int | None:
        """Size of a stored layer, or None when absent."""
        try:
            return self.path_for(digest).stat().st_size
        except FileNotFoundError:
            return None

    def touch(self, digest: str) -> None:
        """Mark a stored layer as used now (nothing when it is absent)."""
        with contextlib.suppress(FileNotFoundError):
            os.utime(self.path_for(digest))

    def files(self) -> list[LayerFile]:
        """Every stored layer."""
        found: list[LayerFile] = []
        for path in (self.root / "sha256").glob("*"):
            with contextlib.suppress(FileNotFoundError):
                st = path.stat()
                found.append(LayerFile(f"sha256:{path.name}", st.st_size, st.st_mtime))
        return found

    def remove(self, digest: str) -> None:
        """Delete a stored layer (a missing one is not an error)."""
        self.path_for(digest).unlink(missing_ok=True)

    def preflight(self, expected_size: int | None) -> int:
        """Raise 507 unless `min_free_bytes` stay free after it; return the bytes it may take."""
        self.root.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(self.root).free
        needed = (expected_size or 0) + self.min_free_bytes
        if free < needed:
            raise self._no_space(f"{free} bytes free, {needed} needed (including "
                                 f"{self.min_free_bytes} kept spare)")
        return free - self.min_free_bytes

    def _no_space(self, why: str) -> ApiProblem:
        return ApiProblem(
            507, f"not enough disk space for this layer: {why}",
            hint=f"free space on the filesystem of {self.root} (e.g. haloy images prune)",
        )

    async def receive(
        self, digest: str, chunks: AsyncIterator[bytes], expected_size: int | None = None
    ) -> int:
        """Stream `chunks` to disk, verify the digest, move into place; return the size."""
        final = self.path_for(digest)
        budget = self.preflight(expected_size)
        tmp_dir = self.root / "tmp"
        await asyncio.to_thread(tmp_dir.mkdir, parents=True, exist_ok=True)
        tmp = tmp_dir / f"{final.name}.{ULID()}"
        hasher = hashlib.sha256()
        size = 0
        buffer = bytearray()
        fh: BinaryIO = await asyncio.to_thread(tmp.open, "xb")
        try:
            try:
                async for chunk in chunks:
                    hasher.update(chunk)
                    size += len(chunk)
                    if size > budget:
                        # A body without a (true) length must not eat the spare either.
                        raise self._no_space(f"the upload passed {budget} bytes, what the "
                                             f"disk has beyond {self.min_free_bytes} kept spare")
                    buffer += chunk
                    if len(buffer) >= _FLUSH_BYTES:
                        await asyncio.to_thread(fh.write, bytes(buffer))
                        buffer.clear()
                await asyncio.to_thread(fh.write, bytes(buffer))
            finally:
                await asyncio.to_thread(fh.close)
            actual = "sha256:" + hasher.hexdigest()
            if actual != digest:
                raise ApiProblem(
                    400,
                    f"layer content does not match its digest: got {actual}",
                    hint="the upload was corrupted or the digest is wrong; upload it again",
                    code="digest_mismatch",
                )
            await asyncio.to_thread(final.parent.mkdir, parents=True, exist_ok=True)
            await asyncio.to_thread(os.replace, tmp, final)
        except BaseException as exc:
            # Nothing half-written or unverified is kept, whatever stopped the upload.
            await asyncio.to_thread(tmp.unlink, missing_ok=True)
            if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
                # Something else filled the disk while this layer streamed in.
                raise self._no_space("the disk filled up during the upload") from exc
            raise
        return size
