"""What haloyd's API asks of the container engine: small protocols over runtime/.

`DockerRuntime` (runtime.docker) is the implementation; API handlers are typed against these,
so no code outside runtime/ sees aiodocker. Every method raises `haloy.errors.EngineError`
(or a subclass) when the engine fails.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from haloy.runtime.docker import ContainerSummary
from haloy.runtime.exec import ExecOutput, ExecState
from haloy.runtime.images import ImageInfo, LocalImage


class ImageStore(Protocol):
    """The engine's images (runtime.images.Images)."""

    async def inspect(self, ref: str) -> ImageInfo | None:
        """The local image `ref`, or None when absent."""
        ...

    async def by_digest(self, digest: str, image_ref: str = "") -> ImageInfo | None:
        """The local image `digest` names, or None."""
        ...

    async def all(self) -> list[LocalImage]:
        """Every image."""
        ...

    async def all_layers(self) -> list[tuple[str, ...]]:
        """The `RootFS.Layers` of every image."""
        ...

    async def load(self, tar: AsyncIterator[bytes]) -> list[str]:
        """docker load a tar stream; the references it tagged."""
        ...

    async def tag(self, image: str, repo: str, tag: str) -> None:
        """Tag `image` as repo:tag."""
        ...

    async def untag(self, ref: str) -> bool:
        """Remove a tag; False when in use or already gone."""
        ...

    async def check_login(self, auth: Mapping[str, str], timeout: float = ...) -> None:
        """Have the engine log in to a registry."""
        ...


class RunningExec(Protocol):
    """One created command (runtime.exec.Exec)."""

    container_id: str

    def output(self) -> AbstractAsyncContextManager[ExecOutput]:
        """Start it attached; its output until the block ends."""
        ...

    async def state(self) -> ExecState:
        """Whether it still runs, and its exit code."""
        ...


class ExecRunner(Protocol):
    """Creates commands in containers (runtime.exec.Execs)."""

    async def create(
        self, container_id: str, argv: Sequence[str], *, env: Mapping[str, str] | None = None,
        user: str = "",
    ) -> RunningExec:
        """A command ready to start in the container."""
        ...


class LogSource(Protocol):
    """Containers' logs (runtime.logs.ContainerLogs)."""

    async def read(self, container_id: str, stream: str, tail: int) -> list[str]:
        """The last `tail` lines of one stream, timestamped."""
        ...

    def follow(self, container_id: str, stream: str, tail: int) -> AsyncGenerator[str, None]:
        """One stream as the container writes it, timestamped."""
        ...


class Engine(Protocol):
    """The engine as the API uses it (runtime.docker.DockerRuntime)."""

    @property
    def images(self) -> ImageStore:
        """Image operations."""
        ...

    @property
    def execs(self) -> ExecRunner:
        """Commands in containers."""
        ...

    @property
    def logs(self) -> LogSource:
        """Container logs."""
        ...

    async def list_containers(
        self, label: str | None = None, *, all_states: bool = True
    ) -> list[ContainerSummary]:
        """Containers, optionally only those carrying `label`."""
        ...
