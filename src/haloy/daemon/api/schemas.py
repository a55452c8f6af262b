"""Request and response bodies of the API: pydantic models, camelCase on the wire.

Python code uses snake_case field names (`populate_by_name`); JSON uses camelCase aliases like
Haloy's API. The OpenAPI document is generated from these models.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

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


class LayerCheckResponse(Schema):
    """Which of the asked layers the server lacks and which it has."""

    missing: list[str]
    present: list[str]


class LayerStored(Schema):
    """A layer that is now on the server."""

    digest: str
    size: int
    stored: bool = Field(description="false when the server already had the layer")
