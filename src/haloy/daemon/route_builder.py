"""Route builder (pure): discovered replicas + health + deployer controls -> route Snapshot.

Per app, the active deployment is the newest deployment id (ULIDs sort by time) that has at
least one routable replica; when none has, the newest one (its route then has no active
backend, and the proxy answers 502 or holds). So a deploy's new container takes over only
once healthy, and an app whose replicas all fail keeps its route. Replicas the deployer marks
draining stay in the route as "draining" until it stops them. While a deploy runs, the
deployer pins the app's active set (`Controls.pinned`): exactly those routable containers
serve, old and new side by side, so a rolling deploy moves traffic one replica at a time.

A host belongs to the app that holds it: claimed by two apps, it stays with the app the last
published snapshot routed it to (`owners`), else it goes to the app whose name sorts first; the
other claim is reported and dropped (its whole route when it is that route's canonical domain).
The API domain and `localhost` are never an app's: such claims are reported and dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from haloy.runtime.labels import AppLabels
from haloy.wire.snapshot import ApiRoute, Backend, Endpoint, Route, Snapshot

# Names the proxy answers with haloyd's API: an app route for one would receive the token.
LOCALHOST = "localhost"


@dataclass(frozen=True)
class Replica:
    """One running, correctly labelled container with its address on the app network."""

    container_id: str
    name: str
    labels: AppLabels
    address: str


@dataclass(frozen=True)
class Problem:
    """Something reported rather than routed: a container's label or a contested domain."""

    subject: str  # container name, or "domain <host>"
    label: str
    reason: str


@dataclass(frozen=True)
class Controls:
    """What the deployer asks for on top of discovery."""

    draining: frozenset[str] = frozenset()  # container ids
    excluded: frozenset[str] = frozenset()  # container ids on their way out: never routed
    paused: frozenset[str] = frozenset()  # app names: hold requests (replace deploys)
    hold_when_empty: frozenset[str] = frozenset()  # app names
    # app name -> container ids a running deploy routes (old and new side by side).
    pinned: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # app name -> its routes when the hold began: a held app keeps them (without backends)
    # while a replace deploy has no container of it running, so requests wait, not 404.
    held_routes: Mapping[str, tuple[Route, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Extras:
    """Snapshot parts that do not come from Docker (API route, ACME, TLS hosts)."""

    api: ApiRoute | None = None
    acme_challenge_backend: Endpoint | None = None
    tls_hosts: frozenset[str] = frozenset()
    trusted_proxies: tuple[str, ...] = ()  # haloyd.yaml proxy.trusted_proxies


@dataclass(frozen=True)
class AppRouting:
    """How one app is routed: its active deployment and backends."""

    app: str
    deployment_id: str
    active: tuple[str, ...]  # container ids
    draining: tuple[str, ...]
    domains: tuple[str, ...]


@dataclass(frozen=True)
class BuildResult:
    snapshot: Snapshot
    apps: dict[str, AppRouting] = field(default_factory=dict)
    problems: tuple[Problem, ...] = ()


def reserved_hosts(api_domain: str | None) -> frozenset[str]:
    """Host names no app may claim: the API's."""
    return frozenset({LOCALHOST} | ({api_domain} if api_domain else set()))


def host_owners(snapshot: Snapshot | None) -> dict[str, str]:
    """host -> app, for every name (domain or alias) `snapshot` routes to an app."""
    if snapshot is None:
        return {}
    return {h: r.app for r in snapshot.routes for h in (r.domain, *r.aliases)}


def build_routes(
    replicas: Iterable[Replica],
    routable: Callable[[str], bool],
    controls: Controls = Controls(),
    extras: Extras = Extras(),
    owners: Mapping[str, str] | None = None,
) -> BuildResult:
    """Build the snapshot (generation 0; the publisher numbers it).

    `owners` (host -> app, from the last published snapshot) decides contested hosts.
    """
    by_app: dict[str, list[Replica]] = {}
    for r in replicas:
        if r.container_id not in controls.excluded:
            by_app.setdefault(r.labels.app, []).append(r)

    chosen = {app: _choose(app, group, routable, controls) for app, group in by_app.items()}
    routes: list[Route] = []
    apps: dict[str, AppRouting] = {}
    problems: list[Problem] = []
    claimed = _owners({app: c[3] for app, c in chosen.items()}, owners or {})  # host -> app
    reserved = reserved_hosts(extras.api.domain if extras.api else None)
    for app in sorted(chosen):
        deployment, active, draining, source = chosen[app]
        backends = tuple(
            [_backend(r, "active") for r in active] + [_backend(r, "draining") for r in draining]
        )
        hosts: list[str] = []
        used: set[str] = set()  # names this app already routes
        for domain in source.domains:
            if domain.name in used:
                continue  # listed twice by the same app
            if domain.name in reserved:
                problems.append(_reserved(domain.name, app))
                continue
            owner = claimed[domain.name]
            if owner != app:
                problems.append(_conflict(domain.name, owner, app))
                continue
            aliases: list[str] = []
            for alias in domain.aliases:
                if alias == domain.name or alias in aliases or alias in used:
                    continue
                if alias in reserved:
                    problems.append(_reserved(alias, app))
                    continue
                if claimed[alias] != app:
                    problems.append(_conflict(alias, claimed[alias], app))
                    continue
                aliases.append(alias)
            hosts.append(domain.name)
            used.update((domain.name, *aliases))
            routes.append(
                Route(
                    app=app,
                    domain=domain.name,
                    aliases=tuple(aliases),
                    backends=backends,
                    paused=app in controls.paused,
                    hold_when_empty=app in controls.hold_when_empty,
                    tls=domain.name in extras.tls_hosts,
                )
            )
        apps[app] = AppRouting(
            app,
            deployment,
            tuple(r.container_id for r in active),
            tuple(r.container_id for r in draining),
            tuple(hosts),
        )
    for app in sorted(controls.paused - set(apps)):
        for held in controls.held_routes.get(app, ()):
            names = (held.domain, *held.aliases)
            if any(claimed.get(h, app) != app or h in reserved for h in names):
                continue  # another app routes that name now
            claimed.update(dict.fromkeys(names, app))
            routes.append(held.model_copy(update={"backends": (), "paused": True}))
    snapshot = Snapshot(
        api=extras.api, acme_challenge_backend=extras.acme_challenge_backend, routes=tuple(routes),
        trusted_proxies=extras.trusted_proxies,
    )
    return BuildResult(snapshot, apps, tuple(problems))


def _choose(
    app: str, replicas: list[Replica], routable: Callable[[str], bool], controls: Controls
) -> tuple[str, list[Replica], list[Replica], AppLabels]:
    """An app's active deployment, active and draining replicas, and the labels whose
    domains it routes (the newest replica of the active deployment)."""
    group = sorted(replicas, key=lambda r: (r.labels.deployment_id, r.name))
    draining = [r for r in group if r.container_id in controls.draining]
    serving = [r for r in group if r.container_id not in controls.draining]
    healthy_ids = {r.labels.deployment_id for r in serving if routable(r.container_id)}
    candidates = healthy_ids or {r.labels.deployment_id for r in serving}
    if not candidates:
        candidates = {r.labels.deployment_id for r in draining}
    deployment = max(candidates)
    active = [
        r for r in serving if r.labels.deployment_id == deployment and routable(r.container_id)
    ]
    pins = controls.pinned.get(app, frozenset())
    pinned = [r for r in serving if r.container_id in pins and routable(r.container_id)]
    if pinned:
        active, deployment = pinned, max(r.labels.deployment_id for r in pinned)
    source = [r for r in group if r.labels.deployment_id == deployment][-1].labels
    return deployment, active, draining, source


def _owners(sources: Mapping[str, AppLabels], held: Mapping[str, str]) -> dict[str, str]:
    """host -> the app that gets it: its holder when that app still claims it, else the
    claimant whose name sorts first."""
    claims: dict[str, set[str]] = {}
    for app, source in sources.items():
        for domain in source.domains:
            for host in (domain.name, *domain.aliases):
                claims.setdefault(host, set()).add(app)
    return {h: held[h] if held.get(h) in apps else min(apps) for h, apps in claims.items()}


def _reserved(host: str, app: str) -> Problem:
    return Problem(f"domain {host}", "dev.haloy.domain",
                   f"claimed by app {app!r}, but it names haloyd's API; not routed")


def _backend(r: Replica, state: str) -> Backend:
    return Backend.model_validate(
        {
            "address": r.address,
            "port": r.labels.port,
            "deployment_id": r.labels.deployment_id,
            "state": state,
        }
    )


def _conflict(host: str, owner: str, loser: str) -> Problem:
    return Problem(
        f"domain {host}",
        "dev.haloy.domain",
        f"claimed by apps {owner!r} and {loser!r}; routed to {owner!r}",
    )
