"""The internal status interface: what haloyd knows about apps, replicas and health.

Plain frozen dataclasses with `as_dict()` so the API can serve them as JSON unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from haloy.daemon.discovery import Inventory
from haloy.daemon.route_builder import BuildResult
from haloy.health.state import HealthState


@dataclass(frozen=True)
class ReplicaStatus:
    container_id: str
    name: str
    address: str
    port: int
    deployment_id: str
    routing: str  # active | draining | standby (not routed: unhealthy or older deployment)
    health: str  # starting | up | down | unchecked
    checks: int
    failures: int
    ok_streak: int
    fail_streak: int
    last_error: str | None


@dataclass(frozen=True)
class AppStatus:
    app: str
    deployment_id: str
    domains: tuple[str, ...]
    aliases: tuple[str, ...]
    replicas: tuple[ReplicaStatus, ...]


@dataclass(frozen=True)
class ProblemStatus:
    subject: str
    label: str
    reason: str


@dataclass(frozen=True)
class DaemonStatus:
    apps: tuple[AppStatus, ...]
    problems: tuple[ProblemStatus, ...]
    generation: int
    config_hash: str | None
    proxy_in_sync: bool

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)

    def app(self, name: str) -> AppStatus | None:
        """One app by name."""
        return next((a for a in self.apps if a.app == name), None)


def build_status(
    inventory: Inventory,
    routing: BuildResult,
    health: Mapping[str, HealthState],
    *,
    generation: int = 0,
    config_hash: str | None = None,
    proxy_hash: str | None = None,
) -> DaemonStatus:
    """Combine discovery, routing and health into one view (pure)."""
    apps = []
    for name, routed in sorted(routing.apps.items()):
        replicas = []
        for r in (r for r in inventory.replicas if r.labels.app == name):
            state = health.get(r.container_id)
            if r.container_id in routed.active:
                routing_state = "active"
            elif r.container_id in routed.draining:
                routing_state = "draining"
            else:
                routing_state = "standby"
            replicas.append(
                ReplicaStatus(
                    r.container_id,
                    r.name,
                    r.address,
                    r.labels.port,
                    r.labels.deployment_id,
                    routing_state,
                    state.status if state else "unchecked",
                    state.checks if state else 0,
                    state.failures if state else 0,
                    state.ok_streak if state else 0,
                    state.fail_streak if state else 0,
                    state.last_error if state else None,
                )
            )
        aliases = tuple(
            a for route in routing.snapshot.routes if route.app == name for a in route.aliases
        )
        apps.append(AppStatus(name, routed.deployment_id, routed.domains, aliases, tuple(replicas)))
    found = (*inventory.problems, *routing.problems)
    problems = tuple(ProblemStatus(p.subject, p.label, p.reason) for p in found)
    return DaemonStatus(
        tuple(apps),
        problems,
        generation,
        config_hash,
        config_hash is not None and proxy_hash == config_hash,
    )
