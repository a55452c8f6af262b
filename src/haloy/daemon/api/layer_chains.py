"""Which layer chains the server's Docker engine already has, so their files need not be sent.

docker load (image/tarexport/load.go) looks every layer up by its chain ID — chainID(L1) =
diffID1, chainID(Ln) = sha256(chainID(Ln-1) + " " + diffIDn) — and opens the layer's file only
when the engine lacks that chain, so a tar may leave such files out (verified on dockerd
20.10). The engine has every prefix of every image's `RootFS.Layers`. A layer counts as the
engine's only where its whole chain matches: the same diff ID after a different parent is not.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from collections.abc import Set as AbstractSet
from typing import Protocol

from haloy.daemon.api.engine_problems import engine_unavailable
from haloy.daemon.api.problems import ApiProblem
from haloy.errors import EngineError
from haloy.runtime.engine import ImageStore

log = logging.getLogger(__name__)


def chain_ids(diff_ids: Sequence[str]) -> list[str]:
    """The chain ID of every prefix of `diff_ids`, as docker's layer store names them."""
    chains: list[str] = []
    for diff_id in diff_ids:
        if not chains:
            chains.append(diff_id)
        else:
            joined = f"{chains[-1]} {diff_id}".encode()
            chains.append("sha256:" + hashlib.sha256(joined).hexdigest())
    return chains


def engine_chains(rootfs_layers: Iterable[Sequence[str]]) -> frozenset[str]:
    """Every chain ID the engine has, given each image's `RootFS.Layers`."""
    return frozenset(c for layers in rootfs_layers for c in chain_ids(layers))


def engine_covered(diff_ids: Sequence[str], chains: AbstractSet[str]) -> frozenset[str]:
    """The layers docker load never needs a file for: the engine has their chain wherever
    they occur in `diff_ids`."""
    found: dict[str, bool] = {}
    for diff_id, chain in zip(diff_ids, chain_ids(diff_ids), strict=True):
        found[diff_id] = found.get(diff_id, True) and chain in chains
    return frozenset(d for d, ok in found.items() if ok)


class ChainSource(Protocol):
    """What the layer endpoints need of the engine: the chains it has now."""

    async def chains(self) -> frozenset[str]:
        """Every layer chain ID the engine has (asked afresh on every call)."""
        ...


class EngineChains:
    """The chains of a Docker engine, from its images' `RootFS.Layers` (no cache: an image may
    be removed at any time, so each request asks again)."""

    def __init__(self, images: ImageStore) -> None:
        self.images = images

    async def chains(self) -> frozenset[str]:
        """Every layer chain ID the engine has; 503 when the engine does not answer."""
        try:
            return engine_chains(await self.images.all_layers())
        except EngineError as exc:
            raise engine_unavailable(exc) from exc


async def covered_now(source: ChainSource | None, diff_ids: Sequence[str]) -> frozenset[str]:
    """The layers of `diff_ids` the engine has by chain; none when it cannot say (uploading
    them is always safe, so the check degrades instead of failing)."""
    if source is None or not diff_ids:
        return frozenset()
    try:
        return engine_covered(diff_ids, await source.chains())
    except ApiProblem as exc:
        log.warning("layer check without the engine's layers: %s", exc.message)
        return frozenset()
