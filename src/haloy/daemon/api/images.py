"""Image endpoints: assemble an image from uploaded layers, or load a whole `docker save` tar.

Both stream a tar into docker load (`POST /images/load`): nothing is staged on disk beyond
the layers already stored, and the disk-space preflight answers 507 before docker starts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Protocol

from starlette.requests import Request
from starlette.responses import Response

from haloy.daemon.api.engine_problems import load_refused
from haloy.daemon.api.handlers import model_response
from haloy.daemon.api.history_tags import HistoryTags
from haloy.daemon.api.image_tar import ImageSpecError, image_tar, layer_name, parse_spec
from haloy.daemon.api.layer_chains import ChainSource, engine_covered
from haloy.daemon.api.layers import LayerStore, check_digest
from haloy.daemon.api.numbers import whole_number
from haloy.daemon.api.problems import ApiProblem
from haloy.errors import EngineError
from haloy.wire.api import AssembleRequest, ImageLoaded

log = logging.getLogger(__name__)


class ImageLoader(Protocol):
    """What the image endpoints need of the engine (runtime.images.Images in haloyd)."""

    async def load(self, tar: AsyncIterator[bytes]) -> list[str]:
        """docker load a tar stream; return the references it tagged (EngineError when the
        engine refuses it)."""
        ...


async def threaded(pieces: Iterator[bytes]) -> AsyncIterator[bytes]:
    """Drive a blocking (file-reading) generator in worker threads."""
    while (piece := await asyncio.to_thread(next, pieces, None)) is not None:
        yield piece


class Counted:
    """Counts the bytes of a stream as it passes."""

    def __init__(self, stream: AsyncIterator[bytes]) -> None:
        self.stream = stream
        self.bytes = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.stream:
            self.bytes += len(chunk)
            yield chunk


def missing_problem(ref: str, missing: list[str]) -> ApiProblem:
    """409: layers neither uploaded nor (by chain) in the engine."""
    return ApiProblem(
        409,
        f"{len(missing)} layer(s) of {ref} are neither uploaded nor in the server's Docker "
        "engine: " + ", ".join(missing),
        hint="deploy again: haloy deploy uploads what the server lacks (PUT "
        "/v1/images/layers/{digest}); an image the engine had may have been removed meanwhile",
        code="layers_missing",
    )


class ImageHandlers:
    """POST /v1/images/assemble and POST /v1/images."""

    def __init__(
        self, loader: ImageLoader, layers: LayerStore | None, chains: ChainSource | None = None,
        history: HistoryTags | None = None,
    ) -> None:
        self.loader = loader
        self.layers = layers
        self.chains = chains
        self.history = history  # deployments' tags an upload may not move

    async def _engine_has(self, diff_ids: tuple[str, ...]) -> frozenset[str]:
        if self.chains is None:
            return frozenset()
        return engine_covered(diff_ids, await self.chains.chains())

    async def images_assemble(self, request: Request) -> Response:
        """POST /v1/images/assemble"""
        body = AssembleRequest.model_validate_json(await request.body())
        assert self.layers is not None  # mounted only with a layer store
        try:
            spec = parse_spec(body.ref, body.config)
        except ImageSpecError as exc:
            raise ApiProblem(400, str(exc), hint="send the ref and the config `docker save` "
                             "wrote", code="invalid_image") from exc
        paths: dict[str, Path] = {}
        unstored: list[str] = []
        for digest in dict.fromkeys(spec.diff_ids):
            path = self.layers.path_for(check_digest(digest))
            if path.is_file():
                paths[digest] = path
            else:
                unstored.append(digest)
        # A layer not uploaded is fine when the engine has its chain now: docker load uses it.
        engine = await self._engine_has(spec.diff_ids) if unstored else frozenset()
        missing = [d for d in unstored if d not in engine]
        if missing:
            raise missing_problem(spec.ref, missing)
        for digest in paths:
            self.layers.touch(digest)
        size = sum(p.stat().st_size for p in paths.values())
        self.layers.preflight(size)  # docker load copies the layers into its own store
        tar = Counted(threaded(image_tar(spec, paths)))
        try:
            refs = await self.loader.load(aiter(tar))
        except EngineError as exc:
            # The engine lost a chain since we looked: docker load found no file for it and
            # stopped before tagging anything.
            lost = [d for d in unstored if layer_name(d) in exc.reason]
            if lost:
                raise missing_problem(spec.ref, lost) from exc
            raise load_refused(exc) from exc
        if self.history is not None:
            await self.history.check(refs or [spec.ref])
        log.info("assembled %s from %d uploaded layer(s) and %d of the engine's, %d bytes",
                 spec.ref, len(paths), len(unstored), tar.bytes)
        return model_response(
            ImageLoaded(refs=refs or [spec.ref], layers=len(paths), bytes=tar.bytes), status=201
        )

    async def images_load(self, request: Request) -> Response:
        """POST /v1/images (a whole `docker save` tar as the body)"""
        declared = request.headers.get("content-length")
        expected = whole_number(declared)
        if self.layers is not None:
            self.layers.preflight(expected)
        tar = Counted(request.stream())
        try:
            refs = await self.loader.load(aiter(tar))
        except EngineError as exc:
            raise load_refused(exc) from exc
        if self.history is not None:
            await self.history.check(refs)
        log.info("loaded %s from a %d-byte tar", ", ".join(refs) or "an image", tar.bytes)
        return model_response(ImageLoaded(refs=refs, layers=0, bytes=tar.bytes), status=201)
