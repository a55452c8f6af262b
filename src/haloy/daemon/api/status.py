"""What the API asks the rest of haloyd about running apps: the `StatusProvider` protocol.

The composition root passes an object built from discovery (Docker labels) and the health
monitor; the API only reads it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from haloy.wire.api import AppStatus


class StatusProvider(Protocol):
    """Live state of apps: replicas with container id, deployment id, health, counters."""

    async def apps(self) -> Sequence[AppStatus]:
        """Every app that has containers now, sorted by name."""
        ...

    async def app(self, name: str) -> AppStatus | None:
        """One app, or None when nothing of it runs."""
        ...


class StaticStatus:
    """A StatusProvider over a fixed list, for haloyd before discovery is wired and for tests."""

    def __init__(self, apps: Sequence[AppStatus] = ()) -> None:
        self._apps = {a.name: a for a in apps}

    async def apps(self) -> Sequence[AppStatus]:
        """Every app, sorted by name."""
        return [self._apps[n] for n in sorted(self._apps)]

    async def app(self, name: str) -> AppStatus | None:
        """One app, or None."""
        return self._apps.get(name)
