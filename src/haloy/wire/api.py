"""Request and response bodies of the API: pydantic models, camelCase on the wire.

Python code uses snake_case field names (`populate_by_name`); JSON uses camelCase aliases like
Haloy's API. The OpenAPI document is generated from these models.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

# A haloyd whose layer checks and assembly also count the layer chains its Docker engine has
# says so with this capability; only then does a client send `diffIds`.
ENGINE_LAYERS_CAPABILITY = "images.layers.engine"
# One request checks at most this many layers; real images have tens.
MAX_LAYERS_PER_CHECK = 1000


class Schema(BaseModel):
    """Base of every API body: camelCase aliases, unknown fields refused."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        # Answers always carry every field; the schema should say so to clients.
        json_schema_serialization_defaults_required=True,
    )


class ErrorBody(Schema):
    """Every error answer: machine code, what went wrong, what to do."""

    error: str
    detail: str
    hint: str | None = None


class Health(Schema):
    """Liveness of haloyd."""

    status: str = "ok"


class VersionInfo(Schema):
    """Versions and the capabilities this haloyd serves."""

    version: str
    api_version: str
    capabilities: list[str]
    engine_id: str | None = Field(
        None,
        description="The Docker engine haloyd deploys to (`ID|DockerRootDir`): a CLI on the "
        "same engine deploys its built image without uploading it",
    )


class Replica(Schema):
    """One container of an app, as discovery, the health monitor and the proxy see it."""

    container_id: str
    name: str = ""
    deployment_id: str | None = None
    address: str | None = None
    port: int | None = None
    routing: str = Field("standby", description="active, draining or standby (not routed)")
    health: str = Field(description="starting, up, down or unchecked")
    checks: int = 0
    failures: int = 0
    last_error: str | None = None
    requests: int | None = Field(None, description="requests the proxy sent it; null if unknown")
    active_connections: int | None = Field(None, description="open proxy connections to it")


class Domain(Schema):
    """A canonical domain of an app with its aliases."""

    domain: str
    aliases: list[str] = []
    certificate_expiry: datetime | None = None
    url: str | None = Field(
        None,
        description="Where the proxy serves it: https:// once a certificate covers it and "
        "HTTPS is on, else http://",
    )


class AppStatus(Schema):
    """What runs for one app now (rebuilt from Docker labels, not from history)."""

    name: str
    deployment_id: str | None = None
    replicas: list[Replica] = []
    domains: list[Domain] = []


class AppList(Schema):
    """Every app this server runs."""

    apps: list[AppStatus]


class DeploymentOut(Schema):
    """One deployment of history."""

    id: str
    app: str
    status: str
    image_ref: str
    image_digest: str | None
    config: dict[str, Any]
    reason: str | None
    created_at: datetime
    updated_at: datetime
    rolled_back_from: str | None


class DeploymentList(Schema):
    """An app's deployment history, newest first."""

    app: str
    deployments: list[DeploymentOut]


class EventKind(StrEnum):
    """What a deployment event reports; `succeeded` and `failed` end the stream."""

    INFO = "info"
    STEP = "step"
    LOG = "log"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


TERMINAL_KINDS = frozenset({EventKind.SUCCEEDED, EventKind.FAILED})


class DeploymentEvent(Schema):
    """One line of a deployment's progress (the `data:` of an SSE message)."""

    seq: int
    deployment_id: str
    kind: EventKind
    message: str
    at: datetime
    data: dict[str, Any] | None = None


class LayerCheckRequest(Schema):
    """Layers a client could upload."""

    digests: list[str] = Field(max_length=MAX_LAYERS_PER_CHECK)
    diff_ids: list[str] | None = Field(
        None,
        max_length=MAX_LAYERS_PER_CHECK,
        description="The image's layers in order, repeats kept (its config's rootfs.diff_ids). "
        "With it a layer also counts as present when the server's Docker engine has the "
        "chain of layers ending in it; send it only to a haloyd with the "
        "'images.layers.engine' capability",
    )


class LayerCheckResponse(Schema):
    """Which of the asked layers the server lacks and which it has."""

    missing: list[str]
    present: list[str]


class LayerStored(Schema):
    """A layer that is now on the server."""

    digest: str
    size: int
    stored: bool = Field(description="false when the server already had the layer")


# -- deployments --------------------------------------------------------------------------

# Bounds that keep one request from asking the server for something absurd.
MAX_REPLICAS = 100
MAX_DEADLINE_S = 3600.0
# A deploy whose new replicas are not healthy this long after the image is present fails
# (`haloy deploy --deadline`, the deploy request's deadlineSeconds).
DEFAULT_DEADLINE_S = 300.0


class DomainIn(Schema):
    """A canonical domain of a deploy request, with the aliases redirecting to it."""

    domain: str
    aliases: list[str] = []


class RegistryLogin(Schema):
    """Credentials to pull the image (used for this pull only, never stored)."""

    server: str | None = Field(None, description="Registry host; default: the image's")
    username: str
    password: str


class DeployRequest(Schema):
    """POST /v1/deploy: one app's version, with env already resolved by the client."""

    app: str
    image: str = Field(min_length=1, description="Image present on the server (or pullable)")
    domains: list[DomainIn] = Field(min_length=1)
    replicas: int = Field(1, ge=1, le=MAX_REPLICAS)
    port: int = Field(8080, ge=1, le=65535)
    health_check_path: str = "/"
    min_ready_seconds: float = Field(0.0, ge=0, le=600)
    env: dict[str, str] = Field({}, description="Plaintext env; history keeps only the names")
    volumes: list[str] = []
    strategy: Literal["rolling", "replace"] = "rolling"
    naming_strategy: Literal["dynamic", "static"] = Field(
        "dynamic", description="static: the container is named after the app (replace, 1 replica)"
    )
    pull_policy: Literal["always", "if_missing", "never"] = "if_missing"
    history_count: int = Field(6, ge=1, le=1000)
    deadline_seconds: float = Field(
        DEFAULT_DEADLINE_S, gt=0, le=MAX_DEADLINE_S,
        description="Health deadline; excludes image transfer",
    )
    config: dict[str, Any] = Field({}, description="The client's config with secret references")
    registry: RegistryLogin | None = None


class DeployAccepted(Schema):
    """A deployment was accepted; follow `eventsUrl` for its progress."""

    deployment_id: str
    app: str
    events_url: str


class RollbackRequest(Schema):
    """POST /v1/apps/{app}/rollback: redeploy a kept deployment's digest and stored config."""

    deployment_id: str
    env: dict[str, str] = Field({}, description="Env re-resolved by the client")


class StopRequest(Schema):
    """POST /v1/apps/{app}/stop."""

    remove_containers: bool = False
    remove_volumes: bool = Field(False, description="Also the containers' anonymous volumes")


class StopResult(Schema):
    """The containers that were stopped (or removed)."""

    app: str
    containers: list[str]
    removed: bool


class AssembleRequest(Schema):
    """POST /v1/images/assemble: tag `ref` on an image built from uploaded layers."""

    ref: str = Field(min_length=1, max_length=255, description="Tag the image gets, e.g. app:v1")
    config: str = Field(
        min_length=2,
        description="The image config JSON exactly as `docker save` wrote it; its "
        "rootfs.diff_ids name the uploaded layers, in order",
    )


class ImageLoaded(Schema):
    """An image docker loaded: the tags it now carries."""

    refs: list[str]
    layers: int = Field(0, description="Layers assembled (0 for a whole tar)")
    bytes: int = Field(description="Bytes handed to docker load")


class RegistryLoginRequest(Schema):
    """POST /v1/registries/login: credentials checked against the registry, then stored."""

    server: str = Field(min_length=1, max_length=255, description="Registry host[:port]")
    username: str = Field(min_length=1)
    password: str = Field(min_length=1)


class RegistryEntry(Schema):
    """A stored registry login (the password is never shown)."""

    server: str
    username: str


class RegistryList(Schema):
    """The registry logins haloyd uses for pulls."""

    registries: list[RegistryEntry]


class PruneRequest(Schema):
    """POST /v1/images/prune: only haloy's `<app>:<deployment-id>` tags are candidates."""

    dry_run: bool = Field(True, description="Only list what would be removed")
    keep: int | None = Field(
        None, ge=1, le=1000, description="Keep the newest N deployments' images per app; "
        "default: every deployment kept in history"
    )
    app: str | None = Field(None, description="Only this app's images")
    refs: list[str] | None = Field(
        None, max_length=10000, description="Remove only these tags (those a dry run listed "
        "and the user confirmed), and only if they are still to be pruned"
    )


class PrunedImage(Schema):
    """One image tag that was (or would be) removed."""

    ref: str
    id: str
    size: int = Field(description="Bytes the image takes; freed only when its last tag goes")
    reason: str


class PrunedLayer(Schema):
    """An uploaded layer that was (or would be) deleted from the server's layer store."""

    digest: str
    size: int


class PruneResult(Schema):
    """What the prune removed (or would remove)."""

    dry_run: bool
    images: list[PrunedImage]
    bytes_freed: int
    layers: list[PrunedLayer] = Field(
        [], description="Uploaded layers (server-wide, whatever `app` says) that no kept "
        "deployment's image has and that were not used for a day",
    )
    layer_bytes_freed: int = 0


class ServerLogRecord(Schema):
    """One record of haloyd's own log."""

    seq: int
    time: datetime
    level: str
    logger: str
    message: str


# Exec runs for at most this long unless asked for less; an hour bounds a stuck migration.
MAX_EXEC_TIMEOUT_S = 3600.0


class ExecRequest(Schema):
    """A command to run in an app's containers (non-interactive)."""

    argv: list[str] = Field(description="The command and its arguments; not run by a shell")
    timeout: float = Field(60.0, gt=0, le=MAX_EXEC_TIMEOUT_S,
                           description="Seconds before the command is killed")
    container: str | None = Field(None, description="Only the container with this id prefix")
    all_containers: bool = Field(False, description="Every running container of the app")


class ExecResult(Schema):
    """How the command ended in one container; output beyond the cap is cut off."""

    container_id: str
    exit_code: int | None = Field(description="None when killed on timeout or not known")
    stdout: str
    stderr: str
    timed_out: bool
    killed: bool = Field(False, description="After a timeout: the command and its children "
                         "were killed (false: they could not be, and may still run)")
    truncated: bool = Field(description="stdout or stderr exceeded the cap and was cut")


class ExecResults(Schema):
    """One result per container the command ran in."""

    results: list[ExecResult]
