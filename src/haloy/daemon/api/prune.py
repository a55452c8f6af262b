"""POST /v1/images/prune: remove haloy's `<app>:<deployment-id>` tags nothing needs any more.

What is never touched:
* images any container uses, running or stopped (a stopped one may be restarted by a revert);
* tags of deployments kept in history (or, with `keep`, of the newest N per app), of in-flight
  deployments and of the newest succeeded one (what runs now);
* tags of apps this haloyd has no history of (another haloyd on the engine, or made by hand);
* every other image: only tags shaped `<app>:<lowercase ULID>` are candidates.

Removal is an untag without force: the engine deletes the image when its last tag goes, and
refuses (409) if a container started using it meanwhile, which is then skipped. With `refs`
(what a dry run showed and the user confirmed) only those of them still to be pruned go.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from haloy.daemon.api.handlers import check_app, model_response
from haloy.daemon.api.layer_prune import LayerPruner
from haloy.daemon.api.validate import app_name_problem, deployment_id_problem
from haloy.runtime.engine import Engine
from haloy.runtime.images import LocalImage
from haloy.store import Deployment, DeploymentStore, Status
from haloy.store.states import IN_FLIGHT
from haloy.wire.api import PrunedImage, PrunedLayer, PruneRequest, PruneResult

log = logging.getLogger(__name__)

NOT_IN_HISTORY = "deployment no longer in history"


@dataclass(frozen=True)
class AppHistory:
    """Deployment ids (lowercase, as in tags) of one app: all in history, and those kept."""

    known: frozenset[str]
    kept: frozenset[str]


def managed_tag(tag: str) -> tuple[str, str] | None:
    """(app, deployment id) of a haloy tag `<app>:<lowercase ULID>`, else None."""
    app, colon, dep = tag.rpartition(":")
    if not colon or "/" in app or app_name_problem(app) or deployment_id_problem(dep.upper()):
        return None
    return app, dep


def app_history(history: Sequence[Deployment], keep: int | None) -> AppHistory:
    """Which of an app's deployments (newest first) keep their image under `keep`."""
    known = frozenset(d.id.lower() for d in history)
    current = next((d.id for d in history if d.status is Status.SUCCEEDED), None)
    kept = {d.id.lower() for d in (history if keep is None else history[:keep])}
    flying = [d for d in history if d.status in IN_FLIGHT]
    # A rollback in flight deploys the tag of the deployment it rolls back to.
    kept |= {i.lower() for d in flying for i in (d.id, d.rolled_back_from) if i}
    if current is not None:
        kept.add(current.lower())
    return AppHistory(known, frozenset(kept))


def plan_prune(
    images: Iterable[LocalImage], used: frozenset[str], apps: Mapping[str, AppHistory],
    keep: int | None,
) -> tuple[list[PrunedImage], int]:
    """The tags to remove and the bytes that frees (pure)."""
    doomed: list[PrunedImage] = []
    freed = 0
    for image in images:
        if image.id in used:
            continue
        going = []
        for tag in image.tags:
            parsed = managed_tag(tag)
            if parsed is None or parsed[0] not in apps:
                continue
            hist = apps[parsed[0]]
            if parsed[1] in hist.kept:
                continue
            reason = (f"older than the newest {keep} deployments" if parsed[1] in hist.known
                      else NOT_IN_HISTORY)
            going.append(PrunedImage(ref=tag, id=image.id, size=image.size, reason=reason))
        doomed += going
        if going and len(going) == len(image.tags):
            freed += image.size  # the last tag goes, so the engine deletes the image
    return sorted(doomed, key=lambda p: p.ref), freed


class PruneHandlers:
    """The prune endpoint, over the engine and the history store."""

    def __init__(self, engine: Engine, store: DeploymentStore,
                 layers: LayerPruner | None = None) -> None:
        self.engine = engine
        self.store = store
        self.layers = layers

    async def images_prune(self, request: Request) -> Response:
        """POST /v1/images/prune"""
        raw = await request.body()
        body = PruneRequest.model_validate_json(raw if raw.strip() else b"{}")
        # Engine first, history second: a deploy records its row before it tags `<app>:<id>`,
        # so every tag seen here already has its row (kept while in flight) when history is read.
        images = await self.engine.images.all()
        containers = await self.engine.list_containers()
        names = [check_app(body.app)] if body.app else await self.store.apps()
        histories = {a: await self.store.history(a) for a in names}
        # An app without history here is another haloyd's (or hand-made): never touched.
        apps = {a: app_history(h, body.keep) for a, h in histories.items() if h}
        used = frozenset(c.image_id for c in containers)
        doomed, freed = plan_prune(images, used, apps, body.keep)
        if body.refs is not None:  # only what the user confirmed, if still doomed now
            doomed, freed = confirmed(doomed, images, frozenset(body.refs))
        if not body.dry_run:
            doomed, freed = await self._remove(doomed, images)
            log.info("image prune removed %d tag(s), %d bytes freed%s", len(doomed), freed,
                     f" ({', '.join(p.ref for p in doomed)})" if doomed else "")
        layers: list[PrunedLayer] = []
        if self.layers is not None:  # server-wide, whatever app the call names
            pruned = await self.layers.prune(dry_run=body.dry_run)
            layers = [PrunedLayer(digest=f.digest, size=f.size) for f in pruned]
        return model_response(PruneResult(dry_run=body.dry_run, images=doomed,
                                          bytes_freed=freed, layers=layers,
                                          layer_bytes_freed=sum(f.size for f in layers)))

    async def _remove(
        self, doomed: list[PrunedImage], images: list[LocalImage]
    ) -> tuple[list[PrunedImage], int]:
        removed: list[PrunedImage] = []
        for item in doomed:
            # False: gone already, or a container took it meanwhile.
            if await self.engine.images.untag(item.ref):
                removed.append(item)
        return removed, bytes_freed(removed, images)


def bytes_freed(going: Sequence[PrunedImage], images: Iterable[LocalImage]) -> int:
    """Bytes of the images whose every tag is in `going` (the engine deletes those)."""
    gone = {p.ref for p in going}
    return sum(i.size for i in images if i.tags and all(t in gone for t in i.tags))


def confirmed(
    doomed: list[PrunedImage], images: list[LocalImage], refs: frozenset[str]
) -> tuple[list[PrunedImage], int]:
    """The planned removals limited to `refs` (what a user saw and confirmed)."""
    kept = [p for p in doomed if p.ref in refs]
    return kept, bytes_freed(kept, images)
