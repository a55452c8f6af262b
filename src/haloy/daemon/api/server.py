"""The uvicorn server for the API, configured the one way haloyd runs it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Generator

import uvicorn
from starlette.types import ASGIApp

# Open event streams would hold shutdown forever; clients reconnect with Last-Event-ID.
GRACEFUL_SHUTDOWN_S = 5


# uvicorn's websockets-sansio protocol never marks a handshake refused with an HTTP response
# (ASGI's websocket.http.response, how the tunnel answers 401/404/409) as complete, so it logs
# this at ERROR for every refusal although the client got its answer. The wsproto protocol
# does not; the message names nothing else, so it is dropped.
_FALSE_ALARM = "ASGI callable returned without completing handshake."


def _not_a_false_alarm(record: logging.LogRecord) -> bool:
    return record.msg != _FALSE_ALARM


logging.getLogger("uvicorn.error").addFilter(_not_a_false_alarm)


class ApiServer(uvicorn.Server):
    """uvicorn without its own signal handlers: haloyd's composition root owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        """Leave SIGINT/SIGTERM to the caller (uvicorn would replace haloyd's handlers)."""
        yield


def make_server(app: ASGIApp, host: str = "127.0.0.1", port: int = 9922) -> ApiServer:
    """A uvicorn server for `app`; run it with `serve_api(server)`."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="none",  # run on the caller's loop (haloyd's TaskGroup)
        lifespan="off",
        # haloyd sits behind haloy-proxy: it must not trust X-Forwarded-* for its own URLs.
        proxy_headers=False,
        server_header=False,
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    return ApiServer(config)


async def serve_api(server: uvicorn.Server, sockets: list[socket.socket] | None = None) -> None:
    """Serve until `server.should_exit` or cancellation; either way stop listening and drain."""
    try:
        await server.serve(sockets)
    except asyncio.CancelledError:
        # Cancelled by the TaskGroup: close listeners and let answers finish (bounded).
        if server.started:
            await server.shutdown(sockets)
        raise
