"""The connection to the Docker engine: its two pools, networks, the container list, events.

runtime/ is the only package that talks to dockerd (aiodocker is imported nowhere else).
`DockerRuntime` holds the connection and hands out the operations by concept: `images`
(runtime.images), `execs` (runtime.exec), `logs` (runtime.logs); container lifecycle is
runtime.containers. Failures are translated once, in runtime.engine_calls.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiodocker
import aiohttp

from haloy.errors import EngineError, EngineNotFound, EngineUnavailable
from haloy.runtime.engine_calls import CALL_TIMEOUT, POOL_WAIT_S, START_HINT, translate_errors
from haloy.runtime.exec import Execs
from haloy.runtime.images import Images
from haloy.runtime.logs import ContainerLogs

DEFAULT_NETWORK = "haloy"
DEFAULT_SOCKET = "unix:///var/run/docker.sock"
# Engine connections for calls (discovery, deployer, inspect, list): aiohttp's default pool.
CALL_POOL = 100
# Long-lived streams (log follows, exec output) get a pool of their own, so however many a
# client opens and abandons, discovery and deploys keep their connections.
STREAM_POOL = 64


@dataclass(frozen=True)
class ContainerSummary:
    """What discovery needs from one container, read from the engine's container list."""

    id: str
    name: str
    labels: Mapping[str, str]
    state: str  # created | running | paused | restarting | exited | dead
    networks: Mapping[str, str] = field(default_factory=dict)  # network name -> IPv4 address
    image_id: str = ""

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> ContainerSummary:
        """Parse one entry of GET /containers/json."""
        names = data.get("Names") or [data.get("Id", "")[:12]]
        nets = (data.get("NetworkSettings") or {}).get("Networks") or {}
        return cls(
            id=str(data.get("Id", "")),
            name=str(names[0]).lstrip("/"),
            labels=dict(data.get("Labels") or {}),
            state=str(data.get("State", "")),
            networks={n: str(v.get("IPAddress") or "") for n, v in nets.items()},
            image_id=str(data.get("ImageID") or ""),
        )


def open_client(url: str, pool: int, keep_alive: bool = True) -> aiodocker.Docker:
    """An aiodocker client on `url` with at most `pool` engine connections (unix sockets)."""
    timeout = aiohttp.ClientTimeout(connect=POOL_WAIT_S)  # aiohttp counts the pool wait in it
    # api_version is pinned so connecting never needs a round trip; 1.41 = engine 20.10.
    if not url.startswith("unix://"):
        return aiodocker.Docker(url=url, api_version="v1.41", timeout=timeout)
    session = aiohttp.ClientSession(
        connector=aiohttp.UnixConnector(url.removeprefix("unix://"), limit=pool,
                                        force_close=not keep_alive),
        timeout=timeout,
    )
    return aiodocker.Docker(url=url, api_version="v1.41", session=session, timeout=timeout)


class DockerRuntime:
    """An open connection to one Docker engine: one pool for calls, one for streams.

    Exec output and log follows hold their connection for as long as they run, so they use
    the stream pool; however many a client opens and abandons, calls keep theirs.
    """

    def __init__(self, client: aiodocker.Docker, docker_host: str,
                 streams: aiodocker.Docker | None = None) -> None:
        self._client = client
        self.docker_host = docker_host
        self._streams = streams or client
        self.images = Images(client)
        self.execs = Execs(self._streams)
        self.logs = ContainerLogs(client, self._streams)

    @classmethod
    def open(cls, docker_host: str | None = None) -> DockerRuntime:
        """Both pools on docker_host, else DOCKER_HOST, else the default socket (nothing is
        sent until the first call)."""
        url = docker_host or os.environ.get("DOCKER_HOST") or DEFAULT_SOCKET
        with translate_errors(f"connecting to {url}"):
            client = open_client(url, CALL_POOL)
            # A stream's connection is never reused: none sits idle once its stream ended.
            streams = open_client(url, STREAM_POOL, keep_alive=False)
        return cls(client, url, streams)

    @classmethod
    async def connect(cls, docker_host: str | None = None) -> DockerRuntime:
        """`open`, then ping the engine."""
        runtime = cls.open(docker_host)
        try:
            await runtime.ping()
        except BaseException:
            await runtime.close()
            raise
        return runtime

    @property
    def client(self) -> aiodocker.Docker:
        """The underlying aiodocker client, for runtime.containers (the deployer's)."""
        return self._client

    async def close(self) -> None:
        """Release both HTTP sessions."""
        for client in {id(c): c for c in (self._client, self._streams)}.values():
            await client.close()
            await client.session.close()  # ours when open_client made it; closing is idempotent

    async def ping(self) -> None:
        """Raise EngineUnavailable (or another EngineError) unless the engine answers."""
        with translate_errors(f"ping {self.docker_host}"):
            async with asyncio.timeout(CALL_TIMEOUT):
                async with self._client._query("_ping") as resp:
                    await resp.read()

    async def info(self) -> Mapping[str, Any]:
        """The engine's GET /info (ID, DockerRootDir, versions, ...)."""
        with translate_errors("reading the engine's info"):
            async with asyncio.timeout(CALL_TIMEOUT):
                data: Mapping[str, Any] = await self._client.system.info()
        return data

    async def network_exists(self, name: str) -> bool:
        """True when a network of this exact name exists."""
        with translate_errors(f"looking up network {name!r}"):
            async with asyncio.timeout(CALL_TIMEOUT):
                nets = await self._client.networks.list(filters={"name": [name]})
        return any(n.get("Name") == name for n in nets)

    async def ensure_network(self, name: str = DEFAULT_NETWORK) -> None:
        """Create an attachable bridge network unless one of this name exists."""
        if await self.network_exists(name):
            return
        try:
            with translate_errors(f"creating network {name!r}"):
                async with asyncio.timeout(CALL_TIMEOUT):
                    await self._client.networks.create(
                        {
                            "Name": name,
                            "Driver": "bridge",
                            "Attachable": True,
                            "CheckDuplicate": True,
                            "Labels": {"dev.haloy.managed": "true"},
                        }
                    )
        except EngineError:
            # Lost a race with another creator: fine if it now exists.
            if not await self.network_exists(name):
                raise

    async def remove_network(self, name: str) -> None:
        """Remove a network; a missing one is not an error."""
        try:
            with translate_errors(f"removing network {name!r}"):
                net = await self._client.networks.get(name)
                await net.delete()
        except EngineNotFound:
            return

    async def list_containers(
        self, label: str | None = None, *, all_states: bool = True
    ) -> list[ContainerSummary]:
        """Containers (all states by default), optionally only those carrying `label`."""
        filters = {"label": [label]} if label else {}
        with translate_errors("listing containers"):
            async with asyncio.timeout(CALL_TIMEOUT):
                async with self._client._query(
                    "containers/json",
                    params={"all": "1" if all_states else "0", "filters": json.dumps(filters)},
                ) as resp:
                    data = await resp.json()
        return [ContainerSummary.from_api(c) for c in data]

    async def image_labels(self, image_id: str) -> Mapping[str, str]:
        """The labels of a local image ({} when the engine no longer has it)."""
        info = await self.images.inspect(image_id)
        return info.labels if info is not None else {}

    async def events(
        self,
        filters: Mapping[str, list[str]] | None = None,
        on_open: Callable[[], None] | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """Stream engine events as dicts until the engine goes away (then EngineUnavailable).

        `on_open` runs once the engine has accepted the subscription, so a caller can resync
        knowing no later event will be missed.
        """
        params = {"filters": json.dumps(dict(filters or {}))}
        with translate_errors("streaming events"):
            async with self._client._query(
                "events", params=params, timeout=aiohttp.ClientTimeout(total=None)
            ) as resp:
                if on_open is not None:
                    on_open()
                async for line in resp.content:
                    if line.strip():
                        yield json.loads(line)
        raise EngineUnavailable("docker: the event stream ended", hint=START_HINT)
