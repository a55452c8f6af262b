"""The control socket's server: a unix stream socket (0600) speaking haloy.wire.control.

A request that fails (unknown op, invalid snapshot, undecodable or too deeply nested JSON) gets
{"ok":false,"error":"<reason>"} and the connection stays open for the next line. Two things
close it: a line longer than LINE_LIMIT (answered with an error first: the rest of that line
cannot be framed) and IDLE_TIMEOUT seconds without a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from haloy.wire.control import LINE_LIMIT, Op, error_reply
from haloy.wire.snapshot import SnapshotError, parse_snapshot

log = logging.getLogger(__name__)

# Every client (haloyd, `haloy-proxy reload`, the supervisor) opens a connection per request
# and gives up on it within seconds (CONTROL_TIMEOUT). A connection silent for a
# minute is abandoned or stuck; closing it bounds the tasks and line buffers (up to LINE_LIMIT
# each) that idle peers can pin.
IDLE_TIMEOUT = 60.0

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


class LocalControl:
    """Answers control requests from one worker's service."""

    def __init__(self, service: Any, reload_certs: Callable[[], int] | None) -> None:
        self.service = service
        self.reload_certs = reload_certs

    async def __call__(self, request: dict[str, Any]) -> dict[str, Any]:
        """Dispatch one request by its `op`."""
        op = request.get("op")
        if op == Op.STATUS:
            return dict(self.service.status())
        if op == Op.PUT_SNAPSHOT:
            raw = request.get("snapshot")
            if not isinstance(raw, dict):
                return error_reply("put_snapshot needs a 'snapshot' object")
            try:
                snap = parse_snapshot(raw)
            except SnapshotError as exc:
                return error_reply(str(exc))
            table = self.service.put_snapshot(snap)
            log.info("route snapshot generation %d (%s)", table.generation, table.config_hash[:12])
            return {"ok": True, "config_hash": table.config_hash, "generation": table.generation}
        if op == Op.RELOAD_CERTS:
            if self.reload_certs is None:
                return {"ok": True, "certificates": 0}
            return {"ok": True, "certificates": self.reload_certs()}
        return error_reply(f"unknown op {op!r}")


class ControlServer:
    """Serves `handler` on a unix socket created with mode 0600."""

    def __init__(self, path: Path, handler: Handler, idle_timeout: float = IDLE_TIMEOUT) -> None:
        self.path = path
        self.handler = handler
        self.idle_timeout = idle_timeout
        self.server: asyncio.Server | None = None
        self.inode = -1

    async def start(self) -> None:
        """Bind a temporary path, then rename it over `path`: the socket changes owner
        atomically (a takeover never leaves a moment without one, nor removes the new one)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        old = os.umask(0o177)  # no window in which the socket is group/world accessible
        try:
            self.server = await asyncio.start_unix_server(self._serve, str(tmp), limit=LINE_LIMIT)
        finally:
            os.umask(old)
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)
        self.inode = os.stat(self.path).st_ino

    async def close(self) -> None:
        """Stop serving; remove the socket file unless a newer process owns the path now."""
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 1.0)
        with contextlib.suppress(FileNotFoundError):
            if os.stat(self.path).st_ino == self.inode:
                self.path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                async with asyncio.timeout(self.idle_timeout):
                    try:
                        line = await reader.readline()
                    except ValueError:
                        # Over LINE_LIMIT: the reader dropped what it buffered, so the rest of
                        # this line would be read as requests of its own. Say why, then close.
                        error = f"request line longer than {LINE_LIMIT} bytes"
                        writer.write(_encode(error_reply(error)))
                        await writer.drain()
                        return
                if not line:
                    return
                writer.write(_encode(await self._answer(line)))
                await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _answer(self, line: bytes) -> dict[str, Any]:
        try:
            request = json.loads(line)
        except RecursionError:
            # json's decoder recurses once per array/object level and stops at the
            # interpreter's recursion limit; no request of this protocol nests beyond a few.
            return error_reply("invalid JSON: nested too deeply")
        except ValueError as exc:
            return error_reply(f"invalid JSON: {exc}")
        if not isinstance(request, dict):
            return error_reply("a request is a JSON object")
        try:
            return await self.handler(request)
        except Exception as exc:  # a bad request must never take the proxy down
            log.exception("control request failed")
            return error_reply(f"internal error: {exc}")


def _encode(reply: dict[str, Any]) -> bytes:
    return json.dumps(reply).encode() + b"\n"
