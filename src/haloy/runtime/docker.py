"""The Docker engine, through aiodocker: the one place that talks to dockerd.

Everything foreign (aiodocker's DockerError, aiohttp's connection errors, timeouts) is
translated here into `RuntimeError_` with a hint, keeping the cause.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import aiodocker
import aiohttp

from haloy.errors import RuntimeError_

DEFAULT_NETWORK = "haloy"
DEFAULT_SOCKET = "unix:///var/run/docker.sock"
# Short calls (ping, list, inspect) that take longer than this mean dockerd is wedged.
CALL_TIMEOUT = 30.0
# Engine connections for calls (discovery, deployer, inspect, list): aiohttp's default pool.
CALL_POOL = 100
# Long-lived streams (log follows, exec output) get a pool of their own, so however many a
# client opens and abandons, discovery and deploys keep their connections.
STREAM_POOL = 64
# A call that waits this long for a free pooled connection fails instead of hanging.
POOL_WAIT_S = 30.0
# aiodocker reports connection failures as DockerError with this pseudo status.
_AIODOCKER_UNREACHABLE = 900
_START_HINT = (
    "is dockerd running? start it with `dockerd --iptables=false --ip-masq=false &` "
    "(or `systemctl start docker`), or point DOCKER_HOST at it"
)


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


@contextmanager
def translate_errors(action: str) -> Iterator[None]:
    """Turn aiodocker/aiohttp/OS errors into RuntimeError_ naming what we were doing."""
    try:
        yield
    except aiodocker.DockerError as exc:
        if exc.status == _AIODOCKER_UNREACHABLE:
            raise RuntimeError_(
                f"docker: {action} failed: cannot reach the engine ({exc.message})",
                hint=_START_HINT,
            ) from exc
        raise RuntimeError_(
            f"docker: {action} failed: {exc.message} (HTTP {exc.status})",
            hint="check the engine's log (journalctl -u docker or dockerd's stderr)",
        ) from exc
    except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
        raise RuntimeError_(
            f"docker: {action} failed: cannot reach the engine ({exc or type(exc).__name__})",
            hint=_START_HINT,
        ) from exc


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
    """An open connection to one Docker engine: one pool for calls, one for streams."""

    def __init__(self, client: aiodocker.Docker, docker_host: str,
                 streams: aiodocker.Docker | None = None) -> None:
        self._client = client
        self.docker_host = docker_host
        self.streams = streams or client

    @classmethod
    async def connect(cls, docker_host: str | None = None) -> DockerRuntime:
        """Connect to docker_host, else DOCKER_HOST, else the default socket, and ping it."""
        url = docker_host or os.environ.get("DOCKER_HOST") or DEFAULT_SOCKET
        with translate_errors(f"connecting to {url}"):
            client = open_client(url, CALL_POOL)
            # A stream's connection is never reused: none sits idle once its stream ended.
            streams = open_client(url, STREAM_POOL, keep_alive=False)
        runtime = cls(client, url, streams)
        try:
            await runtime.ping()
        except BaseException:
            await runtime.close()
            raise
        return runtime

    @property
    def client(self) -> aiodocker.Docker:
        """The underlying aiodocker client, for callers (the deployer) needing more calls."""
        return self._client

    async def close(self) -> None:
        """Release both HTTP sessions."""
        for client in {id(c): c for c in (self._client, self.streams)}.values():
            await client.close()
            await client.session.close()  # ours when open_client made it; closing is idempotent

    async def ping(self) -> None:
        """Raise RuntimeError_ unless the engine answers."""
        with translate_errors(f"ping {self.docker_host}"):
            async with asyncio.timeout(CALL_TIMEOUT):
                async with self._client._query("_ping") as resp:
                    await resp.read()

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
        except RuntimeError_:
            # Lost a race with another creator: fine if it now exists.
            if not await self.network_exists(name):
                raise

    async def remove_network(self, name: str) -> None:
        """Remove a network; a missing one is not an error."""
        with translate_errors(f"removing network {name!r}"):
            try:
                net = await self._client.networks.get(name)
                await net.delete()
            except aiodocker.DockerError as exc:
                if exc.status != 404:
                    raise

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
        try:
            with translate_errors(f"inspecting image {image_id[:19]}"):
                async with asyncio.timeout(CALL_TIMEOUT):
                    data = await self._client.images.inspect(image_id)
        except RuntimeError_ as exc:
            if isinstance(exc.__cause__, aiodocker.DockerError) and exc.__cause__.status == 404:
                return {}
            raise
        return dict((data.get("Config") or {}).get("Labels") or {})

    async def events(
        self,
        filters: Mapping[str, list[str]] | None = None,
        on_open: Callable[[], None] | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """Stream engine events as dicts until the engine goes away (then RuntimeError_).

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
        raise RuntimeError_("docker: the event stream ended", hint=_START_HINT)
