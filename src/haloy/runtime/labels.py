"""The Docker label codec (pure): what a container's `dev.haloy.*` labels say about routing.

    dev.haloy.appName               required  app name (haloy.wire.names)
    dev.haloy.deployment-id         required  sorts by time (ULID; haloy.wire.names)
    dev.haloy.role                  required  must be "app"
    dev.haloy.domain.N              domain.0 required; more domains with N = 1, 2, ...
    dev.haloy.domain.N.alias.M      aliases of domain N (301 to it)
    dev.haloy.port                  optional  container port, default 8080
    dev.haloy.health-check-path     optional  default "/"

A container whose labels are wrong is reported (label, reason) and not routed. Other
`dev.haloy.*` keys are ignored so newer deployers can add labels.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from haloy.config.app import DEFAULT_HEALTH_CHECK_PATH, DEFAULT_PORT
from haloy.wire.names import APP_NAME_RULE, DEPLOYMENT_ID_RULE, is_app_name, is_deployment_id

PREFIX = "dev.haloy."
APP_NAME = "dev.haloy.appName"
DEPLOYMENT_ID = "dev.haloy.deployment-id"
ROLE = "dev.haloy.role"
PORT = "dev.haloy.port"
HEALTH_CHECK_PATH = "dev.haloy.health-check-path"
DOMAIN_PREFIX = "dev.haloy.domain."
ROLE_APP = "app"
# Keys whose presence makes a container "claim" to be a haloy app (and so worth reporting).
CLAIM_KEYS = (APP_NAME, DEPLOYMENT_ID, ROLE, PORT, HEALTH_CHECK_PATH)

_HOST_RE = re.compile(r"^(?=.{1,253}$)(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))*$")
_DOMAIN_KEY_RE = re.compile(r"^dev\.haloy\.domain\.(\d+)(?:\.alias\.(\d+))?$")


@dataclass(frozen=True)
class Domain:
    """One canonical domain and its aliases."""

    name: str
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class AppLabels:
    """The decoded routing labels of one app container."""

    app: str
    deployment_id: str
    domains: tuple[Domain, ...]
    port: int = DEFAULT_PORT
    health_check_path: str = DEFAULT_HEALTH_CHECK_PATH


@dataclass(frozen=True)
class LabelProblem:
    """Why one label makes a container unroutable."""

    label: str
    reason: str


class LabelError(ValueError):
    """The labels cannot be decoded; `problems` lists every one found."""

    def __init__(self, problems: tuple[LabelProblem, ...]) -> None:
        super().__init__("; ".join(f"{p.label}: {p.reason}" for p in problems))
        self.problems = problems


def claims_haloy(labels: Mapping[str, str]) -> bool:
    """True when the container carries any routing label (so it is ours to route or report).

    A container whose role is set to something other than "app" (haloyd's own, say) says it
    is not an app: it is left alone rather than reported.
    """
    if labels.get(ROLE, ROLE_APP) != ROLE_APP:
        return False
    return any(k in labels for k in CLAIM_KEYS) or any(k.startswith(DOMAIN_PREFIX) for k in labels)


def _host(value: str) -> str | None:
    host = value.strip().lower().rstrip(".")
    return host if _HOST_RE.match(host) else None


def decode(labels: Mapping[str, str]) -> AppLabels:
    """Decode routing labels; raise LabelError listing every problem."""
    problems: list[LabelProblem] = []

    def bad(label: str, reason: str) -> None:
        problems.append(LabelProblem(label, reason))

    app = labels.get(APP_NAME, "").strip()
    if not app:
        bad(APP_NAME, "missing")
    elif not is_app_name(app):
        bad(APP_NAME, f"invalid app name {app!r} ({APP_NAME_RULE})")
    deployment_id = labels.get(DEPLOYMENT_ID, "").strip()
    if not deployment_id:
        bad(DEPLOYMENT_ID, "missing")
    elif not is_deployment_id(deployment_id):
        bad(DEPLOYMENT_ID, f"invalid deployment id {deployment_id!r} ({DEPLOYMENT_ID_RULE})")
    role = labels.get(ROLE)
    if role is None:
        bad(ROLE, f"missing (must be {ROLE_APP!r})")
    elif role != ROLE_APP:
        bad(ROLE, f"is {role!r}, must be {ROLE_APP!r}")

    port = DEFAULT_PORT
    if PORT in labels:
        raw = labels[PORT].strip()
        # ASCII digits only: str.isdigit() also takes "²", which int() then refuses.
        if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= 65535:
            bad(PORT, f"{raw!r} is not a port number (1-65535)")
        else:
            port = int(raw)
    path = labels.get(HEALTH_CHECK_PATH, DEFAULT_HEALTH_CHECK_PATH).strip()
    if not path.startswith("/") or any(c.isspace() for c in path):
        bad(HEALTH_CHECK_PATH, f"{path!r} must be a path starting with '/'")

    domains: dict[int, str] = {}
    aliases: dict[int, dict[int, str]] = {}
    for key, value in labels.items():
        if not key.startswith(DOMAIN_PREFIX):
            continue
        match = _DOMAIN_KEY_RE.match(key)
        if match is None:
            bad(key, "unknown domain label (use dev.haloy.domain.N or .domain.N.alias.M)")
            continue
        host = _host(value)
        if host is None:
            bad(key, f"invalid domain {value!r}")
            continue
        n = int(match[1])
        if match[2] is None:
            domains[n] = host
        else:
            aliases.setdefault(n, {})[int(match[2])] = host
    if 0 not in domains and not any(p.label == f"{DOMAIN_PREFIX}0" for p in problems):
        bad(f"{DOMAIN_PREFIX}0", "missing")
    for n in sorted(set(aliases) - set(domains)):
        bad(f"{DOMAIN_PREFIX}{n}.alias.0", f"alias of dev.haloy.domain.{n}, which is not set")

    if problems:
        raise LabelError(tuple(problems))
    decoded = tuple(
        Domain(domains[n], tuple(aliases.get(n, {})[m] for m in sorted(aliases.get(n, {}))))
        for n in sorted(domains)
    )
    return AppLabels(app, deployment_id, decoded, port, path)


def encode(app: AppLabels) -> dict[str, str]:
    """The labels a deployer puts on a container (inverse of decode)."""
    labels = {
        APP_NAME: app.app,
        DEPLOYMENT_ID: app.deployment_id,
        ROLE: ROLE_APP,
        PORT: str(app.port),
        HEALTH_CHECK_PATH: app.health_check_path,
    }
    for n, domain in enumerate(app.domains):
        labels[f"{DOMAIN_PREFIX}{n}"] = domain.name
        for m, alias in enumerate(domain.aliases):
            labels[f"{DOMAIN_PREFIX}{n}.alias.{m}"] = alias
    return labels
