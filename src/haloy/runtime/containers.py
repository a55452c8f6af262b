"""Container lifecycle on the aiodocker client: images, create/start/stop/remove, logs.

The deployer's I/O shell towards dockerd. Foreign errors become `RuntimeError_` here, with
the cause kept; a missing container or image is reported as None/False where callers must
tell that case apart.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiodocker

from haloy.errors import RuntimeError_
from haloy.runtime.docker import translate_errors

# Creating, starting and inspecting are quick; a slower engine is wedged.
CALL_TIMEOUT = 30.0
# Pulls move whole images; bounded so a dead registry cannot hang a deploy forever.
PULL_TIMEOUT = 600.0
# Seconds between SIGTERM and SIGKILL on stop (docker's own default is 10).
STOP_GRACE_S = 10
RESTART_POLICY = "unless-stopped"


@dataclass(frozen=True)
class ImageInfo:
    """A local image: its id (content digest of the config) and registry digests."""

    id: str
    repo_digests: tuple[str, ...] = ()

    @property
    def digest(self) -> str:
        """The registry digest when the image came from one, else the local image id."""
        return self.repo_digests[0].split("@", 1)[1] if self.repo_digests else self.id


def digests_of(info: ImageInfo) -> list[str]:
    """The registry digests of an image (`sha256:...`, without the repository)."""
    return [d.split("@", 1)[1] for d in info.repo_digests if "@" in d]


def repository(ref: str) -> str:
    """`ref` without its tag or digest: registry:5000/team/app:v1 -> registry:5000/team/app."""
    if "@" in ref:
        return ref.split("@", 1)[0]
    name, sep, tag = ref.rpartition(":")
    return name if sep and "/" not in tag else ref


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

    async def image(self, ref: str) -> ImageInfo | None:
        """The local image `ref` (name:tag or id), or None when absent."""
        try:
            with translate_errors(f"inspecting image {ref}"):
                async with asyncio.timeout(CALL_TIMEOUT):
                    data = await self.client.images.inspect(ref)
        except RuntimeError_ as exc:
            if isinstance(exc.__cause__, aiodocker.DockerError) and exc.__cause__.status == 404:
                return None
            raise
        return ImageInfo(str(data["Id"]), tuple(data.get("RepoDigests") or ()))

    async def image_by_digest(self, digest: str, image_ref: str = "") -> ImageInfo | None:
        """The local image `digest` names (its id, or a registry digest of `image_ref`'s
        repository), whatever tags it carries now; None when the engine no longer has it."""
        repo = repository(image_ref)
        for ref in (digest, *([f"{repo}@{digest}"] if repo else [])):
            info = await self.image(ref)
            if info is not None and digest in (info.id, *digests_of(info)):
                return info
        return None

    async def pull(self, ref: str, auth: Mapping[str, str] | None = None) -> None:
        """Pull `ref` from its registry."""
        with translate_errors(f"pulling {ref}"):
            await self.client.images.pull(ref, auth=dict(auth) if auth else None,
                                          timeout=PULL_TIMEOUT)

    async def tag(self, image: str, repo: str, tag: str) -> None:
        """Tag `image` as repo:tag."""
        with translate_errors(f"tagging {image} as {repo}:{tag}"):
            async with asyncio.timeout(CALL_TIMEOUT):
                await self.client.images.tag(image, repo, tag=tag)

    async def untag(self, ref: str) -> bool:
        """Remove a tag; False when the image is in use or already gone (never forced)."""
        try:
            with translate_errors(f"removing image tag {ref}"):
                async with asyncio.timeout(CALL_TIMEOUT):
                    await self.client.images.delete(ref)
        except RuntimeError_ as exc:
            if isinstance(exc.__cause__, aiodocker.DockerError) and exc.__cause__.status in (
                404, 409,
            ):
                return False
            raise
        return True

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
        except RuntimeError_ as exc:
            if isinstance(exc.__cause__, aiodocker.DockerError) and exc.__cause__.status == 404:
                return None
            raise
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
        except RuntimeError_ as exc:
            if isinstance(exc.__cause__, aiodocker.DockerError) and exc.__cause__.status == 404:
                return
            raise

    async def logs_tail(self, cid: str, lines: int = 20) -> list[str]:
        """The last `lines` lines of stdout+stderr ([] when the container is gone)."""
        try:
            with translate_errors(f"reading logs of {cid[:12]}"):
                async with asyncio.timeout(CALL_TIMEOUT):
                    out = await self.client.containers.container(cid).log(
                        stdout=True, stderr=True, tail=lines
                    )
        except RuntimeError_:
            return []
        text = "".join(str(chunk) for chunk in out)
        return [line for line in text.splitlines() if line.strip()][-lines:]
