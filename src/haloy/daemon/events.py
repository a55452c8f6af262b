"""In-memory progress of deployments: an append-only `EventLog` each, held by an `EventHub`.

The deployer appends; any number of SSE readers replay from the start and then wait for more.
A `succeeded` or `failed` event closes the log and ends every reader's stream. Logs live in
memory only: after a restart the history store tells how a deployment ended.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from haloy.wire.api import TERMINAL_KINDS, DeploymentEvent, EventKind

# Finished logs kept for late readers; a deploy's log is a few hundred small events.
DEFAULT_KEEP_LOGS = 200


def _utcnow() -> datetime:
    return datetime.now(UTC)


class EventLog:
    """Append-only events of one deployment, with async waiters."""

    def __init__(self, deployment_id: str, clock: Callable[[], datetime] = _utcnow) -> None:
        self.deployment_id = deployment_id
        self._clock = clock
        self._events: list[DeploymentEvent] = []
        self._changed = asyncio.Event()
        self._waiters = 0

    @property
    def waiters(self) -> int:
        """How many readers are waiting for the next event now."""
        return self._waiters

    @property
    def closed(self) -> bool:
        """True once a terminal event was appended."""
        return bool(self._events) and self._events[-1].kind in TERMINAL_KINDS

    def __len__(self) -> int:
        return len(self._events)

    def append(
        self, kind: EventKind, message: str, data: dict[str, Any] | None = None
    ) -> DeploymentEvent:
        """Add an event and wake every waiter; a closed log refuses more."""
        if self.closed:
            raise ValueError(f"event log of {self.deployment_id} is closed")
        event = DeploymentEvent(
            seq=len(self._events),
            deployment_id=self.deployment_id,
            kind=kind,
            message=message,
            at=self._clock(),
            data=data,
        )
        self._events.append(event)
        # Swap the Event: current waiters wake, later waiters wait for the next append.
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
        return event

    def since(self, start: int) -> list[DeploymentEvent]:
        """Events with seq >= start."""
        return self._events[max(0, start) :]

    async def wait_beyond(self, count: int) -> None:
        """Return once the log holds more than `count` events or is closed."""
        self._waiters += 1
        try:
            while len(self._events) <= count and not self.closed:
                await self._changed.wait()
        finally:
            self._waiters -= 1


class EventHub:
    """The event logs of recent deployments, by deployment id."""

    def __init__(
        self, keep: int = DEFAULT_KEEP_LOGS, clock: Callable[[], datetime] = _utcnow
    ) -> None:
        self._keep = keep
        self._clock = clock
        self._logs: OrderedDict[str, EventLog] = OrderedDict()

    def create(self, deployment_id: str) -> EventLog:
        """Start the log of a new deployment (dropping the oldest finished logs beyond `keep`)."""
        if deployment_id in self._logs:
            raise ValueError(f"deployment {deployment_id} already has an event log")
        log = EventLog(deployment_id, self._clock)
        self._logs[deployment_id] = log
        finished = [k for k, v in self._logs.items() if v.closed]
        for key in finished[: max(0, len(self._logs) - self._keep)]:
            del self._logs[key]
        return log

    def get(self, deployment_id: str) -> EventLog | None:
        """The log of a deployment, or None when not in memory."""
        return self._logs.get(deployment_id)
