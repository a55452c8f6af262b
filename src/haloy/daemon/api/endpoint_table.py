"""The API's endpoints as one table: the routes and the OpenAPI document are both built from it."""

from __future__ import annotations

from haloy.daemon.api.deploys import DeployHandlers
from haloy.daemon.api.endpoints import OCTETS, SSE, Endpoint
from haloy.daemon.api.exec import ExecHandlers
from haloy.daemon.api.handlers import Handlers
from haloy.daemon.api.images import ImageHandlers
from haloy.daemon.api.logs import LogHandlers
from haloy.daemon.api.prune import PruneHandlers
from haloy.daemon.api.registries import RegistryHandlers
from haloy.daemon.api.server_logs import ServerLogHandlers
from haloy.daemon.api.tunnel import TunnelHandlers
from haloy.wire.api import (
    AppList,
    AppStatus,
    AssembleRequest,
    DeployAccepted,
    DeploymentEvent,
    DeploymentList,
    DeployRequest,
    ExecRequest,
    ExecResults,
    Health,
    ImageLoaded,
    LayerCheckRequest,
    LayerCheckResponse,
    LayerStored,
    PruneRequest,
    PruneResult,
    RegistryEntry,
    RegistryList,
    RegistryLoginRequest,
    RollbackRequest,
    ServerLogRecord,
    StopRequest,
    StopResult,
    VersionInfo,
)

ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "GET", "/health", Handlers.health, "Liveness of haloyd (no token needed).", Health,
        public=True,
    ),
    Endpoint("GET", "/v1/version", Handlers.version, "Versions and capabilities.", VersionInfo),
    Endpoint("GET", "/v1/openapi.json", Handlers.openapi, "This OpenAPI document.", None),
    Endpoint(
        "GET",
        "/v1/apps",
        Handlers.list_apps,
        "Every app that runs, with replicas and domains.",
        AppList,
        capability="apps",
    ),
    Endpoint(
        "GET",
        "/v1/apps/{app}",
        Handlers.get_app,
        "One app: replicas, health, counters, domains.",
        AppStatus,
        errors=(400, 404),
        capability="apps",
    ),
    Endpoint(
        "GET",
        "/v1/apps/{app}/deployments",
        Handlers.app_deployments,
        "Deployment history of an app, newest first.",
        DeploymentList,
        errors=(400,),
        capability="deployments.history",
    ),
    Endpoint(
        "GET",
        "/v1/deployments/{deployment_id}/events",
        Handlers.deployment_events,
        "Progress of a deployment as server-sent events, replayed from the start; a "
        "succeeded or failed event ends the stream.",
        DeploymentEvent,
        media_type=SSE,
        errors=(400, 404),
        capability="deployments.events",
    ),
    Endpoint(
        "POST",
        "/v1/images/layers/check",
        Handlers.layers_check,
        "Which of these layers the server lacks.",
        LayerCheckResponse,
        request=LayerCheckRequest,
        errors=(400, 413, 422),
        capability="images.layers",
        needs_layers=True,
    ),
    Endpoint(
        "PUT",
        "/v1/images/layers/{digest:path}",
        Handlers.layer_put,
        "Upload one layer; its sha256 must match the digest.",
        LayerStored,
        status=201,
        request_media_type=OCTETS,
        errors=(400, 413, 507),
        capability="images.layers",
        needs_layers=True,
        large_body=True,
    ),
    Endpoint(
        "POST",
        "/v1/deploy",
        DeployHandlers.deploy,
        "Start a deployment (rolling or replace); 409 while one of the app runs.",
        DeployAccepted,
        status=202,
        request=DeployRequest,
        errors=(400, 409, 413, 422),
        capability="deployments",
    ),
    Endpoint(
        "POST",
        "/v1/apps/{app}/rollback",
        DeployHandlers.rollback,
        "Deploy a kept deployment's image digest and stored config again, as a new deployment.",
        DeployAccepted,
        status=202,
        request=RollbackRequest,
        errors=(400, 404, 409, 422),
        capability="deployments.rollback",
    ),
    Endpoint(
        "POST",
        "/v1/apps/{app}/stop",
        DeployHandlers.stop,
        "Take an app out of the routes and stop (or remove) its containers.",
        StopResult,
        request=StopRequest,
        errors=(400, 409, 422),
        capability="apps.stop",
    ),
    Endpoint(
        "POST",
        "/v1/images/assemble",
        ImageHandlers.images_assemble,
        "Build an image from uploaded layers and its config (docker load of a tar made on the "
        "fly) and tag it; 409 names layers still missing, 507 when the disk is short.",
        ImageLoaded,
        status=201,
        request=AssembleRequest,
        errors=(400, 409, 413, 422, 507),
        capability="images.assemble",
        needs_layers=True,
    ),
    Endpoint(
        "POST",
        "/v1/images",
        ImageHandlers.images_load,
        "Load a whole `docker save` tar streamed as the body.",
        ImageLoaded,
        status=201,
        request_media_type="application/x-tar",
        errors=(400, 413, 507),
        capability="images.tar",
        large_body=True,
    ),
    Endpoint(
        "GET",
        "/v1/apps/{app}/logs",
        LogHandlers.app_logs,
        "Container logs as server-sent events (`log` events with container, stream stdout or "
        "stderr, time, line; an `end` event closes a finite stream). Query: tail (default "
        "100), follow (default true), container (id prefix), all (every container).",
        None,
        media_type=SSE,
        errors=(400, 404),
        capability="apps.logs",
    ),
    Endpoint(
        "POST",
        "/v1/registries/login",
        RegistryHandlers.registry_login,
        "Check registry credentials with the Docker engine, then store them (0600) for pulls "
        "of that registry's images by deploys that carry no credentials.",
        RegistryEntry,
        request=RegistryLoginRequest,
        errors=(400, 403, 422, 502),
        capability="registries",
    ),
    Endpoint(
        "GET",
        "/v1/registries",
        RegistryHandlers.registries,
        "The stored registry logins (servers and usernames; never passwords).",
        RegistryList,
        capability="registries",
    ),
    Endpoint(
        "DELETE",
        "/v1/registries/{server}",
        RegistryHandlers.registry_logout,
        "Forget the stored login for a registry.",
        RegistryEntry,
        errors=(404,),
        capability="registries",
    ),
    Endpoint(
        "POST",
        "/v1/images/prune",
        PruneHandlers.images_prune,
        "Remove haloy's `<app>:<deployment-id>` image tags that no container uses and no kept "
        "deployment needs (dry run by default); answers the tags and the bytes freed.",
        PruneResult,
        request=PruneRequest,
        errors=(400, 422),
        capability="images.prune",
    ),
    Endpoint(
        "GET",
        "/v1/server/logs",
        ServerLogHandlers.server_logs,
        "haloyd's own recent log as server-sent events (`log` events; an `end` event closes a "
        "finite stream). Query: tail (default 100), follow (default true).",
        ServerLogRecord,
        media_type=SSE,
        errors=(400,),
        capability="server.logs",
    ),
    Endpoint(
        "POST",
        "/v1/apps/{app}/exec",
        ExecHandlers.app_exec,
        "Run a command (argv, not a shell) in the app's running containers: the newest "
        "deployment's first one, or `container` (id prefix), or `allContainers`. Each result "
        "has the exit code and output (capped; `truncated` says so); on timeout the command is "
        "killed and `timedOut` is set.",
        ExecResults,
        request=ExecRequest,
        errors=(400, 404, 409, 422),
        capability="apps.exec",
    ),
    Endpoint(
        "GET",
        "/v1/apps/{app}/tunnel",
        TunnelHandlers.app_tunnel,
        "WebSocket upgrade (send `Connection: Upgrade`, `Upgrade: websocket` and the bearer "
        "token) carrying one raw TCP connection to a container port on the app network. Query: "
        "port (required), container (id prefix; default the newest deployment's first). Binary "
        "frames carry the bytes; an empty binary frame ends that direction (TCP half-close); "
        "the server closes with 1000 when both ended, 4502 with the reason when the container "
        "port refuses, 1011 when a side broke. 400/404 answer before the upgrade.",
        None,
        status=101,
        errors=(400, 404, 409),
        capability="apps.tunnel",
        websocket=True,
    ),
)
