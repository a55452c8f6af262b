"""The engine's images: inspect (the one implementation), list, load, pull, tag, untag, and
registry logins.

A missing image is reported as None (inspect) or False (untag) where callers must tell that
case apart; every other failure is an engine error (`haloy.errors.EngineError`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiodocker

from haloy.errors import EngineError, EngineNotFound, EngineUnavailable
from haloy.runtime.engine_calls import CALL_TIMEOUT, START_HINT, translate_errors

# Pulls move whole images; bounded so a dead registry cannot hang a deploy forever.
PULL_TIMEOUT = 600.0
# The engine dials the registry; a dead one answers "connection refused" within seconds.
AUTH_TIMEOUT_S = 30.0
# Inspect this many images at once: an engine with hundreds of images answers in a second or
# two without being flooded.
INSPECT_PARALLELISM = 8
_LOADED = "Loaded image: "


@dataclass(frozen=True)
class ImageInfo:
    """A local image: id (content digest of the config), registry digests, labels, and the
    diff IDs of its layers (`RootFS.Layers`)."""

    id: str
    repo_digests: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    layers: tuple[str, ...] = ()

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> ImageInfo:
        """Parse GET /images/{name}/json."""
        return cls(
            id=str(data["Id"]),
            repo_digests=tuple(data.get("RepoDigests") or ()),
            labels=dict((data.get("Config") or {}).get("Labels") or {}),
            layers=tuple(str(d) for d in (data.get("RootFS") or {}).get("Layers") or ()),
        )

    @property
    def digest(self) -> str:
        """The registry digest when the image came from one, else the local image id."""
        return self.repo_digests[0].split("@", 1)[1] if self.repo_digests else self.id


@dataclass(frozen=True)
class LocalImage:
    """One row of the engine's image list: id, tags, size in bytes."""

    id: str
    tags: tuple[str, ...]
    size: int

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> LocalImage:
        """Parse one entry of GET /images/json (the untagged `<none>:<none>` dropped)."""
        tags = tuple(t for t in (data.get("RepoTags") or ()) if t != "<none>:<none>")
        return cls(str(data["Id"]), tags, int(data.get("Size") or 0))


def digests_of(info: ImageInfo) -> list[str]:
    """The registry digests of an image (`sha256:...`, without the repository)."""
    return [d.split("@", 1)[1] for d in info.repo_digests if "@" in d]


def repository(ref: str) -> str:
    """`ref` without its tag or digest: registry:5000/team/app:v1 -> registry:5000/team/app."""
    if "@" in ref:
        return ref.split("@", 1)[0]
    name, sep, tag = ref.rpartition(":")
    return name if sep and "/" not in tag else ref


def loaded_refs(items: Sequence[Any]) -> list[str]:
    """The references a docker load answer says it tagged; EngineError for an error entry."""
    refs: list[str] = []
    for item in items:
        if isinstance(item, dict) and "error" in item:
            said = str(item["error"])
            raise EngineError(f"docker: loading an image failed: {said}", reason=said)
        text = item.get("stream", "") if isinstance(item, dict) else ""
        for line in str(text).splitlines():
            if line.startswith(_LOADED):
                refs.append(line.removeprefix(_LOADED).strip())
    return refs


class Images:
    """Image operations on one engine."""

    def __init__(self, client: aiodocker.Docker) -> None:
        self.client = client

    async def inspect(self, ref: str) -> ImageInfo | None:
        """The local image `ref` (name:tag, name@digest or id), or None when absent."""
        try:
            with translate_errors(f"inspecting image {ref[:80]}"):
                async with asyncio.timeout(CALL_TIMEOUT):
                    return ImageInfo.from_api(await self.client.images.inspect(ref))
        except EngineNotFound:
            return None

    async def by_digest(self, digest: str, image_ref: str = "") -> ImageInfo | None:
        """The local image `digest` names (its id, or a registry digest of `image_ref`'s
        repository), whatever tags it carries now; None when the engine no longer has it."""
        repo = repository(image_ref)
        for ref in (digest, *([f"{repo}@{digest}"] if repo else [])):
            info = await self.inspect(ref)
            if info is not None and digest in (info.id, *digests_of(info)):
                return info
        return None

    async def all(self) -> list[LocalImage]:
        """Every image of the engine."""
        with translate_errors("listing images"):
            async with asyncio.timeout(CALL_TIMEOUT):
                rows = await self.client.images.list()
        return [LocalImage.from_api(r) for r in rows if isinstance(r, dict) and "Id" in r]

    async def all_layers(self) -> list[tuple[str, ...]]:
        """The `RootFS.Layers` of every image (asked afresh: images come and go)."""
        gate = asyncio.Semaphore(INSPECT_PARALLELISM)

        async def layers_of(image_id: str) -> tuple[str, ...]:
            async with gate:
                info = await self.inspect(image_id)  # None: removed since the listing
            return info.layers if info is not None else ()

        try:
            with translate_errors("reading the layers of every image"):
                # Listing and inspecting every image of a busy engine stays well under this.
                async with asyncio.timeout(CALL_TIMEOUT), asyncio.TaskGroup() as tg:
                    tasks = [tg.create_task(layers_of(i.id)) for i in await self.all()]
        except* EngineError as group:
            raise group.exceptions[0] from group.exceptions[0].__cause__
        return [t.result() for t in tasks]

    async def load(self, tar: AsyncIterator[bytes]) -> list[str]:
        """docker load a tar stream (as long as it takes to send); the references it tagged."""
        with translate_errors("loading an image"):
            items = await self.client.images.import_image(data=tar)
        return loaded_refs(items)

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
        """Remove a tag; False when the image is in use or already gone (never forced).

        The engine deletes the image when its last tag goes."""
        try:
            with translate_errors(f"removing image tag {ref}"):
                async with asyncio.timeout(CALL_TIMEOUT):
                    await self.client.images.delete(ref)
        except EngineError as exc:
            if exc.status in (404, 409):
                return False
            raise
        return True

    async def check_login(self, auth: Mapping[str, str], timeout: float = AUTH_TIMEOUT_S) -> None:
        """Have the engine log in to a registry (`username`, `password`, `serveraddress`);
        an engine error says why it could not."""
        server = auth.get("serveraddress", "the registry")
        try:
            async with asyncio.timeout(timeout):
                with translate_errors(f"logging in to {server}"):
                    await self.client.auth(**auth)
        except TimeoutError as exc:
            said = f"no answer within {timeout:.0f} s"
            raise EngineUnavailable(f"docker: logging in to {server} failed: {said}",
                                    hint=START_HINT, reason=said) from exc
