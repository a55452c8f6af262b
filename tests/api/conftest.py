"""A real haloyd API: uvicorn on a loopback port 0, a real SQLite store, a real layers dir."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from haloy.daemon.api import (
    ApiLimits,
    LayerStore,
    StaticStatus,
    StatusProvider,
    create_api,
    make_server,
    serve_api,
)
from haloy.daemon.api.exec import ExecHandlers
from haloy.daemon.api.images import ImageLoader
from haloy.daemon.api.layer_chains import ChainSource
from haloy.daemon.api.logs import LogHandlers
from haloy.daemon.api.problems import ApiProblem
from haloy.daemon.api.prune import PruneHandlers
from haloy.daemon.api.registries import RegistryHandlers
from haloy.daemon.api.server_logs import LogRing, ServerLogHandlers
from haloy.daemon.api.tunnel import TunnelHandlers
from haloy.daemon.events import EventHub
from haloy.daemon.registry_auth import RegistryAuthStore
from haloy.runtime.docker import DockerRuntime
from haloy.store import DeploymentStore
from haloy.wire.api import AppStatus, Domain, Replica

TOKEN = "t0ken-for-tests-0123456789abcdef"

APPS = [
    AppStatus(
        name="web",
        deployment_id="01J00000000000000000000001",
        replicas=[
            Replica(container_id="c1", name="web-1", deployment_id="01J00000000000000000000001",
                    routing="active", health="up", address="172.18.0.2", port=8080,
                    checks=3, requests=7, active_connections=1),
        ],
        domains=[Domain(domain="web.example.com", aliases=["www.example.com"])],
    ),
    AppStatus(name="api"),
]


class UnavailableDeployer:
    """A DeployerProtocol for API-only tests: mounts the deploy endpoints, refuses with 503.

    The real deployer is tested against dockerd in tests/daemon/test_deployer_*.py.
    """

    async def submit(self, spec: Any, *, rolled_back_from: str | None = None) -> Any:
        raise ApiProblem(503, "no deployer in this test")

    async def rollback(self, app: str, deployment_id: str, env: Any = None) -> Any:
        raise ApiProblem(503, "no deployer in this test")

    async def stop_app(self, app: str, remove_containers: bool = False,
                       remove_volumes: bool = False) -> list[str]:
        raise ApiProblem(503, "no deployer in this test")


class UnavailableImages:
    """An ImageLoader for API-only tests: mounts the image endpoints, refuses with 503.

    The real loader is tested against dockerd in tests/api/test_images_assemble.py.
    """

    async def load(self, tar: AsyncIterator[bytes]) -> list[str]:
        raise ApiProblem(503, "no docker engine in this test")


@dataclass
class RunningApi:
    """A served API and what a test needs to poke at it."""

    url: str
    store: DeploymentStore
    events: EventHub
    layers: LayerStore

    def client(self, token: str | None = TOKEN, **kw: Any) -> httpx.AsyncClient:
        headers = {"authorization": f"Bearer {token}"} if token is not None else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=10.0, **kw)


StartApi = Callable[..., Awaitable[RunningApi]]


@pytest.fixture
async def start_api(tmp_path: Path) -> AsyncIterator[StartApi]:
    """Start API servers (optional limits, min_free_bytes, status, images, chains); stopped
    after."""
    servers: list[tuple[Any, asyncio.Task[None], DeploymentStore]] = []
    # The default engine; it is connected to only when a request uses it.
    engine = DockerRuntime.open()

    async def start(
        limits: ApiLimits | None = None,
        min_free_bytes: int = 0,
        status: StatusProvider | None = None,
        images: ImageLoader | None = None,
        logs: LogHandlers | None = None,
        groups: Sequence[object] = (),
        chains: ChainSource | None = None,
    ) -> RunningApi:
        store = await DeploymentStore.open(tmp_path / f"db{len(servers)}" / "haloy.db")
        events = EventHub()
        layers = LayerStore(tmp_path / "layers", min_free_bytes=min_free_bytes)
        # Every endpoint group is mounted (the served OpenAPI document must match the committed
        # one); a test's own `groups` replace the defaults of the same class.
        defaults: list[object] = [
            RegistryHandlers(
                RegistryAuthStore(tmp_path / f"registries{len(servers)}.json"), engine.images),
            PruneHandlers(engine, store),
            ServerLogHandlers(LogRing()),
            ExecHandlers(engine),
            TunnelHandlers(engine),
        ]
        groups = list({type(g): g for g in (*defaults, *groups)}.values())
        app = create_api(TOKEN, status or StaticStatus(APPS), store, events=events, layers=layers,
                         limits=limits or ApiLimits(), deployer=UnavailableDeployer(),
                         images=images or UnavailableImages(),
                         logs=logs or LogHandlers(engine), groups=groups, chains=chains)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        # Listening before uvicorn starts: connections queue in the backlog until it accepts,
        # so clients need no readiness polling.
        sock.listen(128)
        server = make_server(app)
        task = asyncio.create_task(serve_api(server, [sock]))
        servers.append((server, task, store))
        port = sock.getsockname()[1]
        return RunningApi(f"http://127.0.0.1:{port}", store, events, layers)

    yield start
    for server, task, store in servers:
        server.should_exit = True
        await task
        await store.close()
    await engine.close()


@pytest.fixture
async def api(start_api: StartApi) -> RunningApi:
    """An API server with default limits."""
    return await start_api()
