"""Pruning uploaded layers (`<data>/layers/sha256/`): those no kept deployment needs, by last use.

Once assembled, a layer lives on in the engine's image; the uploaded copy only spares a later
upload. A layer goes when both hold:
* no deployment history keeps has it in its image (the engine's `RootFS.Layers` of the
  recorded digest; images the engine lost count as needing nothing);
* it was last uploaded, found by a layer check or assembled more than `idle_s` ago, so the
  layers of a deploy that is being uploaded but not yet recorded are never taken.

Runs every `PRUNE_INTERVAL_S` in haloyd, and with every whole-server `POST /v1/images/prune`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

from haloy.daemon.api.layers import LayerFile, LayerStore
from haloy.errors import HaloyError
from haloy.runtime.engine import ImageStore
from haloy.store import DeploymentStore

log = logging.getLogger(__name__)

# A day: far longer than any upload-then-deploy takes, short enough that a failed or abandoned
# upload does not hold disk for long.
DEFAULT_LAYER_IDLE_S = 24 * 3600.0
PRUNE_INTERVAL_S = 3600.0


def plan_layer_prune(
    files: Iterable[LayerFile], needed: frozenset[str], now: float, idle_s: float
) -> list[LayerFile]:
    """The stored layers to delete (pure)."""
    return sorted((f for f in files if f.digest not in needed and now - f.last_used > idle_s),
                  key=lambda f: f.digest)


@dataclass
class LayerPruner:
    """Deletes uploaded layers nothing needs, now or on a schedule."""

    layers: LayerStore
    images: ImageStore
    store: DeploymentStore
    idle_s: float = DEFAULT_LAYER_IDLE_S

    async def needed(self) -> frozenset[str]:
        """The layers of every image history records a digest of."""
        found: set[str] = set()
        for app in await self.store.apps():
            for dep in await self.store.history(app):
                if not dep.image_digest:
                    continue
                info = await self.images.by_digest(dep.image_digest, dep.image_ref)
                if info is not None:
                    found.update(info.layers)
        return frozenset(found)

    async def prune(self, dry_run: bool = False) -> list[LayerFile]:
        """Delete (or with `dry_run` only list) the layers to prune."""
        needed = await self.needed()
        files = await asyncio.to_thread(self.layers.files)
        doomed = plan_layer_prune(files, needed, time.time(), self.idle_s)  # mtimes: wall clock
        if not dry_run:
            for f in doomed:
                await asyncio.to_thread(self.layers.remove, f.digest)
            if doomed:
                log.info("layer prune removed %d uploaded layer(s), %d bytes", len(doomed),
                         sum(f.size for f in doomed))
        return doomed

    async def run(self, interval: float = PRUNE_INTERVAL_S) -> None:
        """Prune every `interval` seconds until cancelled; a failure waits for the next round."""
        while True:
            try:
                await self.prune()
            except (HaloyError, OSError, TimeoutError) as exc:
                log.warning("layer prune failed: %s", exc)
            await asyncio.sleep(interval)
