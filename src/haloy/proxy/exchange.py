"""One request/response exchange on a client connection (mutable, per request, slotted)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from haloy.proxy.chunked import ChunkedEnd
    from haloy.proxy.client import ClientProtocol
    from haloy.proxy.routes import BackendState, RouteEntry
    from haloy.proxy.upstream import UpstreamProtocol

PROXY: Final = 0  # an app route
API: Final = 1  # the haloyd API (503 when down)
ACME: Final = 2  # the ACME HTTP-01 challenge responder


class Exchange:
    """Request state from head to response end; the client queues these in pipeline order.

    Defaults live on the class so creating one per request assigns only what differs.
    """

    method = b""
    url = b""
    host = b""
    request_done = False
    keep_alive = True
    body_left = 0  # Content-Length bytes still to come; -1 for a chunked body
    chunks: ChunkedEnd | None = None
    upgrade: bytes | None = None
    http10 = False  # an HTTP/1.0 request: keep-alive must be said in the response
    head = b""  # the rewritten head, kept for one retry of a body-less request
    out_size = 0
    kind = 0  # PROXY (a literal: mypyc compiles only literal class-level defaults)
    entry: RouteEntry | None = None
    backend: BackendState | None = None
    counted = False  # backend.inflight was incremented for this exchange
    upstream: UpstreamProtocol | None = None
    local: bytes | None = None  # a response the proxy answers itself
    close_after = False
    cancelled = False
    reused = False
    retried = False
    status = 0
    resp_bytes = 0
    started = 0.0
    hold_timer: Any = None

    # Set right after creation (no __init__: one Python frame less per request).
    client: ClientProtocol
    out: list[bytes] | None = None  # bytes waiting for the upstream; None discards
