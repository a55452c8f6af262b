"""The health monitor loop: checks every backend on its own schedule, concurrency-limited.

Discovery hands it the current targets; each transition (starting -> up, up -> down,
down -> up) is logged and reported through `on_change` so routes are republished at once.
A starting backend is re-checked quickly (backoff from 50 ms up to the interval) so a new
container joins rotation within a fraction of a second of binding its port.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from dataclasses import dataclass

from haloy.health.probe import ProbeResult, probe
from haloy.health.state import HealthState, advance

log = logging.getLogger(__name__)

# The first re-check of a starting backend; doubles up to the interval.
STARTING_RETRY = 0.05


@dataclass(frozen=True)
class HealthSettings:
    """haloyd.yaml `health_monitor`, in seconds."""

    enabled: bool = True
    interval: float = 15.0
    fall: int = 3
    rise: int = 2
    timeout: float = 5.0
    concurrency: int = 20


@dataclass(frozen=True)
class Target:
    """One backend to check; a new address means a new target (state starts over)."""

    container_id: str
    name: str
    address: str
    port: int
    path: str


Prober = Callable[[str, int, str, float], Awaitable[ProbeResult]]


class HealthMonitor:
    """Owns the HealthState of every current target."""

    def __init__(
        self,
        settings: HealthSettings,
        on_change: Callable[[], None],
        prober: Prober = probe,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._on_change = on_change
        self._probe = prober
        self._clock = clock
        self._targets: dict[str, Target] = {}
        self._states: dict[str, HealthState] = {}
        self._due: dict[str, float] = {}
        self._backoff: dict[str, float] = {}
        self._inflight: set[str] = set()
        self._wake = asyncio.Event()

    def set_targets(self, targets: Iterable[Target], assume_up: Collection[str] = ()) -> None:
        """Replace the set of backends; new ones are checked at once.

        Ids in `assume_up` start as up instead of starting: haloyd passes the backends its
        last published snapshot routed, so a restart keeps serving them while re-checking.
        """
        new = {t.container_id: t for t in targets}
        for cid in list(self._targets):
            if cid not in new or new[cid] != self._targets[cid]:
                for table in (self._targets, self._states, self._due, self._backoff):
                    table.pop(cid, None)
        now = self._clock()
        for cid, target in new.items():
            if cid not in self._targets:
                self._targets[cid] = target
                self._states[cid] = HealthState("up" if cid in assume_up else "starting")
                self._due[cid] = now
                self._backoff[cid] = STARTING_RETRY
        self._wake.set()

    def states(self) -> Mapping[str, HealthState]:
        """Current health by container id (a copy)."""
        return dict(self._states)

    def routable(self, container_id: str) -> bool:
        """Whether this backend may receive traffic; always True with checks disabled."""
        if not self.settings.enabled:
            return True
        state = self._states.get(container_id)
        return state is not None and state.routable

    async def run(self) -> None:
        """Check due targets forever; each check runs as its own task, bounded by a semaphore."""
        if not self.settings.enabled:
            await asyncio.Event().wait()
        limit = asyncio.Semaphore(max(1, self.settings.concurrency))
        async with asyncio.TaskGroup() as tg:
            while True:
                now = self._clock()
                for cid, due in list(self._due.items()):
                    if due <= now and cid not in self._inflight:
                        self._inflight.add(cid)
                        tg.create_task(self._check(self._targets[cid], limit))
                pending = [d for c, d in self._due.items() if c not in self._inflight]
                delay = max(0.0, min(pending) - now) if pending else None
                self._wake.clear()
                try:
                    async with asyncio.timeout(delay):
                        await self._wake.wait()
                except TimeoutError:
                    pass

    async def _check(self, target: Target, limit: asyncio.Semaphore) -> None:
        try:
            async with limit:
                s = self.settings
                try:
                    result = await self._probe(
                        target.address, target.port, target.path, s.timeout
                    )
                except Exception as exc:  # a probe bug must fail the check, not the daemon
                    log.exception("health probe of %s crashed", target.name)
                    result = ProbeResult(False, error=f"probe error: {exc!r}")
            self._record(target, result)
        finally:
            self._inflight.discard(target.container_id)
            self._wake.set()

    def _record(self, target: Target, result: ProbeResult) -> None:
        cid = target.container_id
        if self._targets.get(cid) != target:
            return  # removed or replaced while the check ran
        s = self.settings
        before = self._states[cid]
        after = advance(before, result.ok, rise=s.rise, fall=s.fall, error=result.error)
        self._states[cid] = after
        now = self._clock()
        if after.status == "starting":
            self._due[cid] = now + self._backoff[cid]
            self._backoff[cid] = min(self._backoff[cid] * 2, s.interval)
        else:
            self._due[cid] = now + s.interval
        if after.status != before.status:
            log.info(
                "health %s (%s:%d%s): %s -> %s%s",
                target.name,
                target.address,
                target.port,
                target.path,
                before.status,
                after.status,
                f" ({after.last_error})" if after.last_error else "",
            )
            self._on_change()
