"""Container lifecycle on the aiodocker client: create/start/stop/rename/remove, inspect.

The deployer's I/O shell towards dockerd. Failures are engine errors (`EngineError`), with
the cause kept; a missing container is reported as None where callers must tell that case
apart.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiodocker

from haloy.errors import EngineError, EngineNotFound
from haloy.runtime.engine_calls import CALL_TIMEOUT, translate_errors

# Seconds between SIGTERM and SIGKILL on stop (docker's own default is 10).
STOP_GRACE_S = 10
RESTART_POLICY = "unless-stopped"


@dataclass(frozen=True)
class ContainerSpec:
    """Everything needed to create one app container."""

    name: str
    image: str
    labels: Mapping[str, str]
    env: Mapping[str, str] = field(default_factory=dict)
    volumes: Sequence[str] = ()
    network: str = "haloy"

    def to_api(self) -> dict[str, Any]:
        """The body of POST /containers/create."""
        return {
            "Image": self.image,
            "Labels": dict(self.labels),
            "Env": [f"{k}={v}" for k, v in self.env.items()],
            "HostConfig": {
                "RestartPolicy": {"Name": RESTART_POLICY},
                "Binds": list(self.volumes),
                "NetworkMode": self.network,
            },
            "NetworkingConfig": {"EndpointsConfig": {self.network: {}}},
        }


@dataclass(frozen=True)
class ContainerState:
    """What the deployer needs from an inspect."""

    id: str
    running: bool
    exit_code: int
    address: str  # IPv4 on the app network, "" when not attached or not running
    labels: Mapping[str, str]


class Containers:
    """Lifecycle operations on one engine."""

    def __init__(self, client: aiodocker.Docker, network: str = "haloy") -> None:
        self.client = client
        self.network = network

    async def run(self, spec: ContainerSpec) -> str:
        """Create and start a container; return its id."""
        with translate_errors(f"creating container {spec.name}"):
            async with asyncio.timeout(CALL_TIMEOUT):
                container = await self.client.containers.create(spec.to_api(), name=spec.name)
        try:
            with translate_errors(f"starting container {spec.name}"):
                async with asyncio.timeout(CALL_TIMEOUT):
                    await container.start()
        except BaseException:
            # Nobody holds its id yet: remove it here or it would be left behind.
            await self.remove(str(container.id))
            raise
        return str(container.id)

    async def inspect(self, cid: str) -> ContainerState | None:
        """The state of a container, or None when it does not exist."""
        try:
            with translate_errors(f"inspecting container {cid[:12]}"):
                async with asyncio.timeout(CALL_TIMEOUT):
                    data = await self.client.containers.get(cid)
        except EngineNotFound:
            return None
        state = data["State"]
        nets = data["NetworkSettings"].get("Networks") or {}
        address = str((nets.get(self.network) or {}).get("IPAddress") or "")
        return ContainerState(
            id=str(data["Id"]),
            running=bool(state.get("Running")),
            exit_code=int(state.get("ExitCode") or 0),
            address=address,
            labels=dict(data["Config"].get("Labels") or {}),
        )

    async def start(self, cid: str) -> None:
        """Start an existing (stopped) container."""
        with translate_errors(f"starting container {cid[:12]}"):
            async with asyncio.timeout(CALL_TIMEOUT):
                await self.client.containers.container(cid).start()

    async def stop(self, cid: str, grace: int = STOP_GRACE_S) -> None:
        """Stop a container (SIGTERM, SIGKILL after `grace` seconds)."""
        with translate_errors(f"stopping container {cid[:12]}"):
            async with asyncio.timeout(CALL_TIMEOUT + grace):
                await self.client.containers.container(cid).stop(t=grace)

    async def rename(self, cid: str, name: str) -> None:
        """Give a container another name (its id, network and state stay)."""
        with translate_errors(f"renaming container {cid[:12]} to {name}"):
            async with asyncio.timeout(CALL_TIMEOUT):
                await self.client.containers.container(cid).rename(name)

    async def remove(self, cid: str, volumes: bool = False) -> None:
        """Remove a container (forced); a missing one is not an error."""
        try:
            with translate_errors(f"removing container {cid[:12]}"):
                async with asyncio.timeout(CALL_TIMEOUT):
                    await self.client.containers.container(cid).delete(force=True, v=volumes)
        except EngineNotFound:
            return

    async def logs_tail(self, cid: str, lines: int = 20) -> list[str]:
        """The last `lines` lines of stdout+stderr ([] when the container is gone)."""
        try:
            with translate_errors(f"reading logs of {cid[:12]}"):
                async with asyncio.timeout(CALL_TIMEOUT):
                    out = await self.client.containers.container(cid).log(
                        stdout=True, stderr=True, tail=lines
                    )
        except EngineError:
            return []
        text = "".join(str(chunk) for chunk in out)
        return [line for line in text.splitlines() if line.strip()][-lines:]
