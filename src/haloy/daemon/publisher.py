"""Route publisher: number the snapshot, write it to disk, then push it to the proxy.

The file comes first so a proxy that (re)starts boots from the newest routes even if the push
never arrived. A generation is only spent when the routes change, and the numbering resumes
from the file, so a haloyd restart that finds the same containers republishes an identical
snapshot (same config_hash). A resync loop asks the proxy for its config_hash and pushes again
whenever it differs, e.g. after the proxy restarted with an older file or missed a push.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from haloy.wire.control import CONTROL_TIMEOUT, send_control
from haloy.wire.snapshot import Snapshot, SnapshotError, read_snapshot, write_snapshot

log = logging.getLogger(__name__)

# How often the proxy's config_hash is compared with ours; a restarted proxy boots from the
# file anyway, so this only bounds how long a missed push can go unnoticed.
RESYNC_INTERVAL = 1.0

SendControl = Callable[[Path, dict[str, Any], float], Awaitable[dict[str, Any]]]


class Publisher:
    """Publishes what `build()` returns whenever asked, and keeps the proxy in step."""

    def __init__(
        self,
        snapshot_file: Path,
        control_socket: Path,
        build: Callable[[], Snapshot],
        send: SendControl = send_control,
        resync_interval: float = RESYNC_INTERVAL,
        on_published: Callable[[], None] | None = None,
    ) -> None:
        self._file = snapshot_file
        self._socket = control_socket
        self._build = build
        self._send = send
        self._resync_interval = resync_interval
        self._on_published = on_published
        self._dirty = asyncio.Event()
        # One publish at a time: the temp file name is per process, and generations must not
        # be spent twice for one change.
        self._lock = asyncio.Lock()
        self.current = self._load_previous()
        self.proxy_hash: str | None = None
        self.pushes = 0

    def _load_previous(self) -> Snapshot | None:
        try:
            return read_snapshot(self._file)
        except (SnapshotError, OSError) as exc:
            log.warning("ignoring unreadable snapshot %s: %s", self._file, exc)
            return None

    def request(self) -> None:
        """Ask for a publish (coalesced)."""
        self._dirty.set()

    async def publish(self) -> Snapshot:
        """Build; if the routes changed, number, write and push; return the current snapshot."""
        async with self._lock:
            return await self._publish()

    async def _publish(self) -> Snapshot:
        built = self._build()
        current = self.current
        if current is None or current.model_copy(update={"generation": 0}) != built:
            generation = current.generation + 1 if current is not None else 1
            current = built.model_copy(update={"generation": generation})
            try:
                await asyncio.to_thread(write_snapshot, self._file, current)
            except OSError as exc:
                # Never push what is not on disk; the next request or resync tries again.
                log.error("cannot write %s: %s", self._file, exc)
                return self.current or current
            self.current = current
            log.info(
                "routes generation %d: %d route(s), %d backend(s)",
                generation,
                len(current.routes),
                sum(len(r.backends) for r in current.routes),
            )
        if self.proxy_hash != current.config_hash:
            await self._push(current)
        if self._on_published is not None:
            self._on_published()
        return current

    async def _push(self, snap: Snapshot) -> None:
        request = {"op": "put_snapshot", "snapshot": snap.model_dump(mode="json")}
        try:
            reply = await self._send(self._socket, request, CONTROL_TIMEOUT)
        except (OSError, TimeoutError, ValueError) as exc:
            self.proxy_hash = None
            log.debug("proxy not reachable on %s: %s", self._socket, exc)
            return
        if reply.get("ok"):
            self.proxy_hash = str(reply.get("config_hash") or snap.config_hash)
            self.pushes += 1
        else:
            self.proxy_hash = None
            log.error(
                "proxy rejected routes generation %d: %s", snap.generation, reply.get("error")
            )

    async def _resync(self) -> None:
        try:
            reply = await self._send(self._socket, {"op": "status"}, CONTROL_TIMEOUT)
        except (OSError, TimeoutError, ValueError):
            self.proxy_hash = None
            return
        self.proxy_hash = str(reply.get("config_hash")) if reply.get("ok") else None

    async def run(self) -> None:
        """Publish on request; compare with the proxy every resync interval.

        Nothing is published before the first request, so a restarting haloyd never pushes
        routes built before discovery and the first health checks have run.
        """
        await self._dirty.wait()
        while True:
            try:
                async with asyncio.timeout(self._resync_interval):
                    await self._dirty.wait()
            except TimeoutError:
                await self._resync()
            self._dirty.clear()
            await self.publish()
