"""The endpoint functions: thin translations between HTTP and the store, status and layers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from haloy import __version__
from haloy.daemon.api.endpoints import API_VERSION, SSE
from haloy.daemon.api.layer_chains import ChainSource, covered_now
from haloy.daemon.api.layers import LayerStore, check_digest
from haloy.daemon.api.numbers import whole_number
from haloy.daemon.api.problems import ApiProblem
from haloy.daemon.api.status import StatusProvider
from haloy.daemon.api.validate import app_name_problem, deployment_id_problem
from haloy.daemon.events import EventHub, EventLog
from haloy.daemon.history_config import redact
from haloy.store import Deployment, DeploymentStore, Status
from haloy.wire.api import (
    AppList,
    DeploymentEvent,
    DeploymentList,
    DeploymentOut,
    EventKind,
    Health,
    LayerCheckRequest,
    LayerCheckResponse,
    LayerStored,
    VersionInfo,
)

# A comment line this often keeps proxies and clients from timing out an idle event stream.
SSE_HEARTBEAT_S = 15.0
MAX_HISTORY_LIMIT = 1000


def model_response(model: BaseModel, status: int = 200) -> Response:
    """Serialise a schema with its camelCase aliases."""
    return Response(
        model.model_dump_json(by_alias=True), status_code=status, media_type="application/json"
    )


def check_app(name: str) -> str:
    """Return `name` if it is a valid app name, else raise a 400 ApiProblem."""
    problem = app_name_problem(name)
    if problem:
        raise ApiProblem(400, f"invalid app name {name!r}", hint=problem, code="invalid_app_name")
    return name


def deployment_out(dep: Deployment) -> DeploymentOut:
    """The API view of a history row."""
    return DeploymentOut(
        id=dep.id,
        app=dep.app,
        status=dep.status.value,
        image_ref=dep.image_ref,
        image_digest=dep.image_digest,
        config=redact(dep.config),  # rows stored before literals were masked
        reason=dep.reason,
        created_at=dep.created_at,
        updated_at=dep.updated_at,
        rolled_back_from=dep.rolled_back_from,
    )


def sse_message(event: DeploymentEvent) -> bytes:
    """One server-sent event: id = seq (for Last-Event-ID), event = kind, data = JSON."""
    data = event.model_dump_json(by_alias=True)
    return f"id: {event.seq}\nevent: {event.kind.value}\ndata: {data}\n\n".encode()


async def follow(log: EventLog, start: int, heartbeat: float) -> AsyncIterator[bytes]:
    """Replay `log` from `start`, then stream new events until the terminal one."""
    position = start
    while True:
        for event in log.since(position):
            yield sse_message(event)
            position = event.seq + 1
        if log.closed:
            return
        try:
            await asyncio.wait_for(log.wait_beyond(position), heartbeat)
        except TimeoutError:
            yield b": keep-alive\n\n"


class Handlers:
    """Endpoint functions bound to haloyd's parts."""

    def __init__(
        self,
        status: StatusProvider,
        store: DeploymentStore,
        events: EventHub,
        layers: LayerStore | None,
        capabilities: Sequence[str],
        openapi: dict[str, Any],
        heartbeat: float = SSE_HEARTBEAT_S,
        engine_id: str | None = None,
        chains: ChainSource | None = None,
    ) -> None:
        self.status = status
        self.store = store
        self.events = events
        self.layers = layers
        self.capabilities = list(capabilities)
        self.openapi_doc = openapi
        self.heartbeat = heartbeat
        self.engine_id = engine_id
        self.chains = chains

    async def health(self, request: Request) -> Response:
        """GET /health"""
        return model_response(Health())

    async def version(self, request: Request) -> Response:
        """GET /v1/version"""
        info = VersionInfo(
            version=__version__,
            api_version=API_VERSION,
            capabilities=self.capabilities,
            engine_id=self.engine_id,
        )
        return model_response(info)

    async def openapi(self, request: Request) -> Response:
        """GET /v1/openapi.json"""
        return JSONResponse(self.openapi_doc)

    async def list_apps(self, request: Request) -> Response:
        """GET /v1/apps"""
        return model_response(AppList(apps=list(await self.status.apps())))

    async def get_app(self, request: Request) -> Response:
        """GET /v1/apps/{app}"""
        name = check_app(request.path_params["app"])
        app = await self.status.app(name)
        if app is None:
            raise ApiProblem(
                404,
                f"no app {name!r} runs on this server",
                hint="list the apps with GET /v1/apps (haloy status)",
            )
        return model_response(app)

    async def app_deployments(self, request: Request) -> Response:
        """GET /v1/apps/{app}/deployments[?limit=N]"""
        name = check_app(request.path_params["app"])
        raw = request.query_params.get("limit")
        limit = whole_number(raw)
        if raw is not None and (limit is None or not 1 <= limit <= MAX_HISTORY_LIMIT):
            raise ApiProblem(
                400,
                f"invalid limit {raw!r}",
                hint=f"limit is a whole number from 1 to {MAX_HISTORY_LIMIT}",
            )
        history = await self.store.history(name, limit)
        return model_response(
            DeploymentList(app=name, deployments=[deployment_out(d) for d in history])
        )

    async def deployment_events(self, request: Request) -> Response:
        """GET /v1/deployments/{deployment_id}/events (SSE)"""
        dep_id = request.path_params["deployment_id"]
        problem = deployment_id_problem(dep_id)
        if problem:
            raise ApiProblem(400, f"invalid deployment id {dep_id!r}", hint=problem)
        log = self.events.get(dep_id)
        if log is None:  # not `or`: an empty log is falsy (len 0) yet must be followed
            log = await self._log_from_history(dep_id)
        last = request.headers.get("last-event-id", "")
        seen = whole_number(last)
        start = seen + 1 if seen is not None else 0
        return StreamingResponse(
            follow(log, start, self.heartbeat),
            media_type=SSE,
            headers={"x-accel-buffering": "no"},
        )

    async def _log_from_history(self, dep_id: str) -> EventLog:
        # After a restart the events are gone; the outcome in history still ends the stream.
        dep = await self.store.get(dep_id)
        if dep is None or dep.status in (Status.PENDING, Status.RUNNING):
            raise ApiProblem(
                404,
                f"no events for deployment {dep_id}",
                hint="list the app's deployments to see the ids that are kept",
            )
        log = EventLog(dep_id)
        if dep.status is Status.FAILED:
            log.append(
                EventKind.FAILED, dep.reason or "deployment failed", {"status": dep.status.value}
            )
        else:
            log.append(EventKind.SUCCEEDED, "deployment succeeded", {"status": dep.status.value})
        return log

    def _layers(self) -> LayerStore:
        assert self.layers is not None  # layer routes are mounted only with a layer store
        return self.layers

    async def layers_check(self, request: Request) -> Response:
        """POST /v1/images/layers/check"""
        body = LayerCheckRequest.model_validate_json(await request.body())
        layers = self._layers()
        stored = {d for d in body.digests if layers.size_of(check_digest(d)) is not None}
        for digest in stored:
            layers.touch(digest)  # still wanted: the layer prune goes by last use
        order = [check_digest(d) for d in body.diff_ids or ()]
        # With the order known, the engine's chains count too; each request asks it afresh.
        engine = await covered_now(self.chains, order)
        present = [d for d in body.digests if d in stored or d in engine]
        missing = [d for d in body.digests if d not in stored and d not in engine]
        return model_response(LayerCheckResponse(missing=missing, present=present))

    async def layer_put(self, request: Request) -> Response:
        """PUT /v1/images/layers/{digest}"""
        digest = check_digest(request.path_params["digest"])
        layers = self._layers()
        size = layers.size_of(digest)
        if size is not None:
            layers.touch(digest)
            return model_response(LayerStored(digest=digest, size=size, stored=False))
        declared = request.headers.get("content-length")
        expected = whole_number(declared)
        size = await layers.receive(digest, request.stream(), expected)
        return model_response(LayerStored(digest=digest, size=size, stored=True), status=201)

    async def apps_fallback(self, request: Request) -> Response:
        """Any other path under /v1/apps/: a bad app name is 400, anything else 404."""
        check_app(request.path_params["rest"].split("/", 1)[0])
        raise ApiProblem(
            404,
            f"no endpoint {request.url.path}",
            hint="see /v1/openapi.json for the endpoints this haloyd serves",
        )
