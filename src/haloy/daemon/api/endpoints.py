"""What describes one API endpoint (`Endpoint`), and the media types the API speaks.

The table of every endpoint is `haloy.daemon.api.endpoint_table.ENDPOINTS`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

API_VERSION = "v1"
JSON = "application/json"
SSE = "text/event-stream"
OCTETS = "application/octet-stream"

# A handler is a method of the object that owns it (Handlers, DeployHandlers, ...), referenced
# unbound (`Handlers.health`) so the type checker sees it; create_api binds it to its owner.
HttpHandler = Callable[[Any, Request], Awaitable[Response]]
WebSocketHandler = Callable[[Any, WebSocket], Awaitable[None]]


@dataclass(frozen=True)
class Endpoint:
    """One method + path: its handler, schemas and errors.

    Mounted when create_api has the handler's owner (and, with `needs_layers`, a layer store).
    """

    method: str
    path: str  # Starlette syntax; convertors such as `:path` are dropped in OpenAPI
    handler: HttpHandler | WebSocketHandler
    summary: str
    response: type[BaseModel] | None
    status: int = 200
    media_type: str = JSON
    request: type[BaseModel] | None = None
    request_media_type: str = JSON
    errors: tuple[int, ...] = ()
    public: bool = False
    capability: str | None = None
    needs_layers: bool = False
    large_body: bool = False
    # A WebSocket upgrade (GET): mounted as a WebSocketRoute, described in OpenAPI as a 101.
    websocket: bool = False

    @property
    def name(self) -> str:
        """The route's name and the OpenAPI operationId: the handler's name."""
        return self.handler.__name__
