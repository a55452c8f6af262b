"""What one deployment asks for (`DeploySpec`), and what it puts on each container (pure).

The spec is stored in history without env values: env may hold secrets, which history keeps
only as references (the client's stored config). A rollback re-uses the stored spec with the
env the client re-resolved.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from haloy.config.app import DEFAULT_HEALTH_CHECK_PATH, DEFAULT_HISTORY_COUNT, DEFAULT_PORT
from haloy.config.app_models import DeploymentStrategy, NamingStrategy, PullPolicy
from haloy.runtime.containers import ContainerSpec
from haloy.runtime.label_origin import OWN_LABELS, own_list
from haloy.runtime.labels import AppLabels, Domain, encode
from haloy.wire.api import DEFAULT_DEADLINE_S

REPLICA_ENV = "HALOY_REPLICA_ID"
REPLICA_LABEL = "dev.haloy.replica"


@dataclass(frozen=True)
class DeploySpec:
    """One app's desired version: image, replicas, routing, env, strategy and limits."""

    app: str
    image: str
    domains: tuple[Domain, ...]
    replicas: int = 1
    port: int = DEFAULT_PORT
    health_check_path: str = DEFAULT_HEALTH_CHECK_PATH
    min_ready_seconds: float = 0.0
    env: Mapping[str, str] = field(default_factory=dict)
    volumes: tuple[str, ...] = ()
    strategy: DeploymentStrategy = "rolling"
    naming: NamingStrategy = "dynamic"
    pull_policy: PullPolicy = "if_missing"
    history_count: int = DEFAULT_HISTORY_COUNT
    deadline_s: float = DEFAULT_DEADLINE_S
    config: Mapping[str, Any] = field(default_factory=dict)  # the client's stored config
    extra_labels: Mapping[str, str] = field(default_factory=dict)
    # Pull credentials (username, password, serveraddress): plaintext, so never stored.
    registry_auth: Mapping[str, str] | None = field(default=None, repr=False)

    def stored(self) -> dict[str, Any]:
        """The spec as kept in history: env names only, never env values."""
        data = asdict(self)
        data["domains"] = [{"name": d.name, "aliases": list(d.aliases)} for d in self.domains]
        data["env"] = sorted(self.env)
        data["volumes"] = list(self.volumes)
        data["config"] = dict(self.config)
        data["extra_labels"] = dict(self.extra_labels)
        del data["registry_auth"]
        return {"spec": data}


def spec_from_stored(
    stored: Mapping[str, Any], image: str, env: Mapping[str, str] | None = None
) -> DeploySpec:
    """Rebuild a stored spec for a rollback: same everything, `image` pinned, env re-supplied."""
    data = dict(stored["spec"])
    data["domains"] = tuple(
        Domain(d["name"], tuple(d.get("aliases", ()))) for d in data.get("domains", ())
    )
    data["volumes"] = tuple(data.get("volumes", ()))
    data["env"] = dict(env or {})
    data["image"] = image
    data["pull_policy"] = "never"
    return DeploySpec(**data)


def image_tag(app: str, deployment_id: str) -> str:
    """`<app>:<deployment id>` (lowercase: Docker tags of local images must be)."""
    return f"{app}:{deployment_id.lower()}"


def container_name(app: str, deployment_id: str, replica: int, static: bool = False) -> str:
    """`<app>-<deployment id>-<replica>`: unique per deployment, sorts by time; or `<app>`."""
    return app if static else f"{app}-{deployment_id.lower()}-{replica}"


def set_aside_name(app: str, deployment_id: str) -> str:
    """The name a static container carries while deployment `deployment_id` replaces it."""
    return f"{app}-replaced-by-{deployment_id.lower()}"


def container_spec(
    spec: DeploySpec, deployment_id: str, replica: int, image: str, network: str
) -> ContainerSpec:
    """The container for replica `replica` (1-based) of a deployment."""
    labels = encode(
        AppLabels(spec.app, deployment_id, spec.domains, spec.port, spec.health_check_path)
    )
    labels = {**spec.extra_labels, **labels, REPLICA_LABEL: str(replica)}
    # Only these count: any other dev.haloy.* label the image carries is ignored.
    labels[OWN_LABELS] = own_list(labels)
    return ContainerSpec(
        name=container_name(spec.app, deployment_id, replica, spec.naming == "static"),
        image=image,
        labels=labels,
        env={**spec.env, REPLICA_ENV: str(replica)},
        volumes=spec.volumes,
        network=network,
    )
