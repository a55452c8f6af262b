"""`create_api`: the haloyd REST API as one ASGI app, ready for uvicorn."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from types import MethodType

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import ASGIApp

from haloy.daemon.api.deploys import DeployerProtocol, DeployHandlers
from haloy.daemon.api.endpoint_table import ENDPOINTS
from haloy.daemon.api.endpoints import Endpoint
from haloy.daemon.api.handlers import SSE_HEARTBEAT_S, Handlers
from haloy.daemon.api.history_tags import HistoryTags
from haloy.daemon.api.images import ImageHandlers, ImageLoader
from haloy.daemon.api.layer_chains import ChainSource
from haloy.daemon.api.layers import LayerStore
from haloy.daemon.api.logs import LogHandlers
from haloy.daemon.api.middleware import BearerAuth, BodyLimit, RateLimit, SecurityHeaders
from haloy.daemon.api.openapi import build_openapi
from haloy.daemon.api.problems import EXCEPTION_HANDLERS
from haloy.daemon.api.ratelimit import RateLimiter, RatePolicy
from haloy.daemon.api.status import StatusProvider
from haloy.daemon.api_token import forward_key
from haloy.daemon.events import EventHub
from haloy.errors import ConfigError
from haloy.store import DeploymentStore
from haloy.wire.api import ENGINE_LAYERS_CAPABILITY

# JSON bodies are small (a deploy request is a few KiB of config); 1 MiB leaves ample room.
DEFAULT_MAX_JSON_BYTES = 1024 * 1024
# One layer per request; the biggest layers of real images are a few GiB.
DEFAULT_MAX_LAYER_BYTES = 16 * 1024**3
# Tokens shorter than this are guessable; `haloyd init` generates 32 random bytes.
MIN_TOKEN_LENGTH = 16


@dataclass(frozen=True)
class ApiLimits:
    """Request limits of the API."""

    rate: RatePolicy = field(default_factory=RatePolicy)
    max_json_bytes: int = DEFAULT_MAX_JSON_BYTES
    max_layer_bytes: int = DEFAULT_MAX_LAYER_BYTES
    sse_heartbeat_s: float = SSE_HEARTBEAT_S


def _owned_by(cls: type, ep: Endpoint) -> bool:
    """True when `ep`'s handler is a method of `cls` (the object create_api binds it to)."""
    return getattr(cls, ep.name, None) is ep.handler


def create_api(
    token: str,
    status_provider: StatusProvider,
    store: DeploymentStore,
    *,
    events: EventHub | None = None,
    layers: LayerStore | None = None,
    limits: ApiLimits = ApiLimits(),
    public_routes: Sequence[BaseRoute] = (),
    deployer: DeployerProtocol | None = None,
    images: ImageLoader | None = None,
    logs: LogHandlers | None = None,
    engine_id: str | None = None,
    groups: Sequence[object] = (),
    chains: ChainSource | None = None,
    history_tags: HistoryTags | None = None,
) -> ASGIApp:
    """Build the API app; `public_routes` (e.g. the ACME HTTP-01 answer) skip the token.

    Deploy, rollback and stop are mounted only with a `deployer`; layer uploads only with
    `layers`; image loading (assemble, whole tars) only with an `images` loader;
    container logs only with `logs`. With `chains` (the engine's layer chains) a layer check
    and an assembly count what the engine already has. `engine_id` (the Docker engine's ID)
    lets a CLI on the same engine skip the image upload. With `history_tags` an image upload
    may not move a deployment's `<app>:<id>` tag.
    `groups` are more handler owners (RegistryHandlers, ExecHandlers, ...): an endpoint is
    mounted when the owner of its handler is given.
    """
    if len(token) < MIN_TOKEN_LENGTH:
        raise ConfigError(
            f"the API token is too short ({len(token)} characters, need {MIN_TOKEN_LENGTH})",
            hint="run `haloyd init` to generate a token into the config dir's .env",
        )
    others = [
        owner for owner in (
            DeployHandlers(deployer) if deployer is not None else None,
            ImageHandlers(images, layers, chains, history_tags) if images is not None else None,
            logs,
            *groups,
        ) if owner is not None
    ]
    owner_classes: list[type] = [Handlers, *(type(owner) for owner in others)]
    mounted = [
        ep for ep in ENDPOINTS
        if (layers is not None or not ep.needs_layers)
        and any(_owned_by(cls, ep) for cls in owner_classes)
    ]
    capabilities = sorted({ep.capability for ep in mounted if ep.capability})
    if chains is not None and layers is not None:
        capabilities = sorted([*capabilities, ENGINE_LAYERS_CAPABILITY])
    handlers = Handlers(
        status_provider,
        store,
        EventHub() if events is None else events,
        layers,
        capabilities,
        build_openapi(mounted),
        limits.sse_heartbeat_s,
        engine_id,
        chains if layers is not None else None,
    )
    routes: dict[str, BaseRoute] = {}
    for ep in mounted:
        owner = next(o for o in (handlers, *others) if _owned_by(type(o), ep))
        bound = MethodType(ep.handler, owner)
        routes[ep.name] = (
            WebSocketRoute(ep.path, bound, name=ep.name) if ep.websocket
            else Route(ep.path, bound, methods=[ep.method], name=ep.name)
        )
    # Every method: a bad app name in any /v1/apps/ path answers 400, not 405.
    fallback = Route(
        "/v1/apps/{rest:path}",
        handlers.apps_fallback,
        methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        name="apps_fallback",
    )
    public = [routes[ep.name] for ep in mounted if ep.public] + list(public_routes)
    large = [(routes[ep.name], limits.max_layer_bytes) for ep in mounted if ep.large_body]
    return Starlette(
        routes=[*public_routes, *routes.values(), fallback],
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(RateLimit, limiter=RateLimiter(limits.rate), exempt=[routes["health"]],
                       forward_key=forward_key(token)),
            Middleware(BearerAuth, token=token, public=public),
            Middleware(BodyLimit, default=limits.max_json_bytes, overrides=large),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
    )
