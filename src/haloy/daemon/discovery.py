"""Docker discovery: engine events trigger a reconcile of the full labelled container set.

State is rebuilt from Docker alone: every reconcile lists all containers and decodes their
labels (pure `build_inventory`). Events only say "look again", so a missed or reordered event
costs nothing. Reconciles are throttled to one per `window` (the first runs at once, a burst
of events during the window folds into one more), so a container's start or death changes
routes in well under a second. When dockerd goes away the event stream is resubscribed with
backoff and, once the engine accepts it, a full resync follows.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from haloy.daemon.route_builder import Problem, Replica
from haloy.errors import RuntimeError_
from haloy.runtime.docker import ContainerSummary, DockerRuntime
from haloy.runtime.label_origin import sort_labels
from haloy.runtime.labels import LabelError, claims_haloy, decode

log = logging.getLogger(__name__)

# Coalescing window: short enough that routes follow a start/kill in a fraction of a second,
# long enough to fold the 3-5 events of one `docker stop` or a scale-up into one reconcile.
RECONCILE_WINDOW = 0.15
BACKOFF_MIN = 0.1
BACKOFF_MAX = 5.0
EVENT_FILTERS = {
    "type": ["container", "network"],
    "event": [
        "start",
        "die",
        "stop",
        "kill",
        "destroy",
        "pause",
        "unpause",
        "health_status",
        "connect",
        "disconnect",
    ],
}


@dataclass(frozen=True)
class Inventory:
    """What runs: routable replicas, and the labelled containers that cannot be routed."""

    replicas: tuple[Replica, ...] = ()
    problems: tuple[Problem, ...] = ()
    labelled: int = 0


def build_inventory(
    containers: Iterable[ContainerSummary], network: str,
    image_labels: Mapping[str, Mapping[str, str]] | None = None,
) -> Inventory:
    """Decode the own labels of running containers; report bad and inherited ones (pure).

    `image_labels` maps image id -> that image's labels: routing labels a container only
    inherited from its image are ignored (label_origin).
    """
    replicas: list[Replica] = []
    problems: list[Problem] = []
    labelled = 0
    for c in sorted(containers, key=lambda c: c.name):
        if not claims_haloy(c.labels):
            continue
        origin = sort_labels(c.labels, (image_labels or {}).get(c.image_id, {}))
        if claims_haloy(origin.own):
            labelled += 1
        if c.state != "running":
            continue  # stopped, paused or restarting: not routed, and nothing to report
        problems.extend(
            Problem(c.name, key, "set by the container's image, not when it was created; "
                    "ignored") for key in origin.ignored
        )
        if not claims_haloy(origin.own):
            continue
        try:
            labels = decode(origin.own)
        except LabelError as exc:
            problems.extend(Problem(c.name, p.label, p.reason) for p in exc.problems)
            continue
        address = c.networks.get(network, "")
        if not address:
            problems.append(
                Problem(c.name, "network", f"not attached to network {network!r}; not routed")
            )
            continue
        replicas.append(Replica(c.id, c.name, labels, address))
    return Inventory(tuple(replicas), tuple(problems), labelled)


class Discovery:
    """Keeps `inventory` in step with the engine and reports each new one."""

    def __init__(
        self,
        runtime: DockerRuntime,
        network: str,
        on_inventory: Callable[[Inventory], None],
        window: float = RECONCILE_WINDOW,
    ) -> None:
        self._runtime = runtime
        self._network = network
        self._on_inventory = on_inventory
        self._window = window
        self._dirty = asyncio.Event()
        self._reported: tuple[Problem, ...] = ()
        # Image ids are content digests: an image's labels never change, so they are kept.
        self._image_labels: dict[str, Mapping[str, str]] = {}
        self.inventory: Inventory | None = None
        self.reconciles = 0

    def request(self) -> None:
        """Ask for a reconcile (coalesced)."""
        self._dirty.set()

    async def reconcile(self) -> Inventory:
        """List every container now, rebuild the inventory and report it."""
        containers = await self._runtime.list_containers()
        in_use = {c.image_id for c in containers if c.image_id and claims_haloy(c.labels)}
        for image_id in in_use - set(self._image_labels):
            self._image_labels[image_id] = await self._runtime.image_labels(image_id)
        self._image_labels = {i: self._image_labels[i] for i in in_use}
        inventory = build_inventory(containers, self._network, self._image_labels)
        self.inventory = inventory
        self.reconciles += 1
        if inventory.problems != self._reported:
            for p in set(inventory.problems) - set(self._reported):
                log.warning("container %s: label %s: %s", p.subject, p.label, p.reason)
            self._reported = inventory.problems
        self._on_inventory(inventory)
        return inventory

    async def run(self) -> None:
        """Watch events and reconcile, forever."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._watch())
            tg.create_task(self._reconcile_loop())

    async def _reconcile_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            started = loop.time()
            try:
                await self.reconcile()
            except RuntimeError_ as exc:
                # Keep the last inventory: routes stay up while dockerd is away.
                log.warning("reconcile failed: %s", exc)
            await asyncio.sleep(max(0.0, started + self._window - loop.time()))

    async def _watch(self) -> None:
        backoff = BACKOFF_MIN

        def opened() -> None:
            nonlocal backoff
            backoff = BACKOFF_MIN
            log.info("subscribed to docker events; resyncing")
            self.request()

        while True:
            try:
                async for _event in self._runtime.events(EVENT_FILTERS, on_open=opened):
                    self.request()
            except RuntimeError_ as exc:
                log.warning("docker event stream lost (%s); retrying in %.1fs", exc, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX)
