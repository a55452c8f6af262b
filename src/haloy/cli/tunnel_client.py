"""The CLI end of `haloy tunnel`: a local TCP listener, one API WebSocket per connection.

The frames follow haloyd's tunnel protocol (src/haloy/daemon/api/tunnel.py): binary frames
carry bytes, an empty one ends that direction (half-close), the server closes when both ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

# One local read becomes one frame; far under any frame limit.
CHUNK = 64 * 1024
OPEN_TIMEOUT_S = 30.0


def tunnel_url(server: str, app: str, port: int, container: str | None = None) -> str:
    """The WebSocket URL of an app's tunnel on `server` (http→ws, https→wss)."""
    base = server.rstrip("/")
    scheme, sep, rest = base.partition("://")
    ws = {"http": "ws", "https": "wss"}.get(scheme.lower(), scheme) if sep else "wss"
    query = {"port": str(port)} | ({"container": container} if container else {})
    return f"{ws}://{rest if sep else base}/v1/apps/{app}/tunnel?{urlencode(query)}"


def denial_text(exc: InvalidStatus) -> str:
    """What the server said when it refused the upgrade: `detail (hint)` of its error body."""
    body = exc.response.body or b""
    try:
        shape = json.loads(body)
    except ValueError:
        shape = None
    if isinstance(shape, dict) and shape.get("detail"):
        hint = f" ({shape['hint']})" if shape.get("hint") else ""
        return f"HTTP {exc.response.status_code}: {shape['detail']}{hint}"
    return f"HTTP {exc.response.status_code}"


@dataclass
class Tunnel:
    """Forwards each connection to 127.0.0.1:`local_port` through the API WebSocket `url`."""

    url: str
    token: str
    report: Callable[[str], None]

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Carry one local connection; problems are reported, never raised."""
        try:
            async with connect(self.url, open_timeout=OPEN_TIMEOUT_S,
                               additional_headers={"authorization": f"Bearer {self.token}"},
                               max_size=4 * CHUNK) as ws:
                await carry(ws, reader, writer)
            if ws.close_code not in (None, 1000):
                self.report(f"tunnel closed by the server: {ws.close_reason or ws.close_code}")
        except InvalidStatus as exc:
            self.report(f"tunnel refused: {denial_text(exc)}")
        except (OSError, TimeoutError, WebSocketException) as exc:
            self.report(f"tunnel failed: {exc or type(exc).__name__}")
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def carry(ws: ClientConnection, reader: asyncio.StreamReader,
                writer: asyncio.StreamWriter) -> None:
    """Pump both ways until the server closes the WebSocket."""
    async def up() -> None:
        try:
            while data := await reader.read(CHUNK):
                await ws.send(data)  # waits while the connection's write buffer is full
            await ws.send(b"")
        except OSError:
            await ws.close(1001, "local connection broke")  # reset by the local client

    sender = asyncio.create_task(up())
    try:
        async for frame in ws:
            if isinstance(frame, str):
                continue
            if not frame:
                if writer.can_write_eof():
                    writer.write_eof()
                continue
            writer.write(frame)
            await writer.drain()  # the next frame is read once this one is delivered
    except (ConnectionClosed, OSError):
        pass
    finally:
        sender.cancel()
        with contextlib.suppress(BaseException):
            await sender
