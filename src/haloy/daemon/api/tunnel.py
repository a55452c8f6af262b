"""GET /v1/apps/{app}/tunnel: a WebSocket carrying one raw TCP connection to a container port.

ASGI has no raw `Upgrade: tcp` stream, so the bytes travel as binary WebSocket frames. A
frame with no payload means end of stream (TCP half-close) in the direction it travels;
once both directions ended the server closes with 1000. Problems found before the upgrade
(bad app or port, no container) answer as plain HTTP errors; a container port that refuses
closes the accepted WebSocket with code 4502 and the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from starlette.websockets import WebSocket

from haloy.daemon.api.app_containers import app_containers, network_address
from haloy.daemon.api.handlers import check_app
from haloy.daemon.api.numbers import whole_number
from haloy.daemon.api.problems import ApiProblem, to_response
from haloy.runtime.engine import Engine

# Close codes 4000-4999 are the application's (RFC 6455 §7.4.2); 4502 echoes HTTP 502.
CLOSE_REFUSED = 4502
CLOSE_BROKEN = 1011
CONNECT_TIMEOUT_S = 5.0
# One read from the container becomes one frame; 64 KiB keeps frames far under size limits.
CHUNK = 64 * 1024
_GONE = "gone"


def parse_port(raw: str | None) -> int:
    """The `port` query parameter: 1..65535, else 400."""
    port = whole_number(raw)
    if port is None or not 1 <= port <= 65535:
        raise ApiProblem(400, f"invalid port {raw!r}", hint="give the container port as "
                         "?port=N with N from 1 to 65535 (haloy tunnel --port N)")
    return port


def close_reason(text: str) -> str:
    """A close reason within the 123 bytes a close frame can carry."""
    return text.encode()[:123].decode("utf-8", "ignore")


def why(exc: Exception) -> str:
    """Why a connect to the container failed, in a few words."""
    if isinstance(exc, ConnectionRefusedError):
        return "refused the connection (nothing listens on that port?)"
    if isinstance(exc, TimeoutError):
        return "did not answer the connect in time"
    return f"cannot be reached: {exc}"


class TunnelHandlers:
    """Connects tunnels to the app containers' addresses on the app network."""

    def __init__(self, engine: Engine, network: str | None = None,
                 connect_timeout: float = CONNECT_TIMEOUT_S, instance: str | None = None) -> None:
        self.engine = engine
        self.instance = instance  # only this haloyd's containers
        self.network = network
        self.connect_timeout = connect_timeout

    async def _target(self, websocket: WebSocket) -> tuple[str, int]:
        app = check_app(websocket.path_params["app"])
        port = parse_port(websocket.query_params.get("port"))
        wanted = websocket.query_params.get("container") or None
        container = (await app_containers(self.engine, app, wanted, False, running=True,
                                          instance=self.instance))[0]
        address = network_address(container, self.network)
        if address is None:
            raise ApiProblem(409, f"container {container.id[:12]} has no network address",
                             hint="the app's containers must be on the haloy network")
        return address, port

    async def app_tunnel(self, websocket: WebSocket) -> None:
        """GET /v1/apps/{app}/tunnel?port=N[&container=ID] (WebSocket upgrade)"""
        try:
            address, port = await self._target(websocket)
        except ApiProblem as problem:
            await websocket.send_denial_response(to_response(problem))
            return
        try:
            async with asyncio.timeout(self.connect_timeout):
                reader, writer = await asyncio.open_connection(address, port)
        except (OSError, TimeoutError) as exc:
            await websocket.accept()
            await websocket.close(CLOSE_REFUSED, close_reason(f"{address}:{port} {why(exc)}"))
            return
        await websocket.accept()
        await carry(websocket, reader, writer)


async def carry(websocket: WebSocket, reader: asyncio.StreamReader,
                writer: asyncio.StreamWriter) -> None:
    """Pump both ways until both ended (close 1000) or one side broke (close 1011)."""
    client_eof = asyncio.Event()
    # The client direction keeps being read after its end-of-stream frame: only so does a
    # disconnect show up while the container stays silent.
    tasks = [asyncio.create_task(_to_container(websocket, writer, client_eof)),
             asyncio.create_task(_to_client(websocket, reader))]
    eof_seen = asyncio.create_task(client_eof.wait())
    code, reason, gone = 1000, "", False
    try:
        pending: set[asyncio.Task[Any]] = {*tasks, eof_seen}
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                error = task.exception()
                if error is not None:
                    code, reason = CLOSE_BROKEN, close_reason(repr(error))
                elif task.result() == _GONE:
                    gone = True
            if code != 1000 or gone or (eof_seen.done() and tasks[1].done()):
                break
    finally:
        for task in [*tasks, eof_seen]:
            task.cancel()
        for task in [*tasks, eof_seen]:
            with contextlib.suppress(BaseException):
                await task
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    if not gone:
        with contextlib.suppress(Exception):
            await websocket.close(code, reason)


async def _to_container(websocket: WebSocket, writer: asyncio.StreamWriter,
                        client_eof: asyncio.Event) -> str:
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return _GONE
        data = message.get("bytes")
        if data is None or client_eof.is_set():
            continue  # text frames are not part of the tunnel protocol, nor data after EOF
        if not data:
            writer.write_eof()
            client_eof.set()
            continue
        writer.write(data)
        await writer.drain()  # back-pressure: the next frame is read once this one is sent


async def _to_client(websocket: WebSocket, reader: asyncio.StreamReader) -> str:
    while data := await reader.read(CHUNK):
        await websocket.send_bytes(data)  # waits while the client's socket is full
    await websocket.send_bytes(b"")
    return "eof"
