"""ASGI guards around every API request: security headers, rate limit, bearer token, body cap.

Order, outermost first: headers (so every answer carries them) → rate limit (so wrong-token
guessing is throttled too) → auth → body cap (so strangers cannot make us read big bodies).
"""

from __future__ import annotations

import hmac
import math
import time
from collections.abc import Callable, Sequence

from starlette.datastructures import Headers
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from haloy.daemon.api.numbers import whole_number
from haloy.daemon.api.problems import SECURITY_HEADERS, ApiProblem, problem_response
from haloy.daemon.api.ratelimit import RateLimiter
from haloy.wire.snapshot import FORWARD_KEY_HEADER

_LOOPBACK = frozenset({"127.0.0.1", "::1"})
_FORWARD_KEY = FORWARD_KEY_HEADER.lower()


def _matches(routes: Sequence[BaseRoute], scope: Scope) -> bool:
    return any(route.matches(scope)[0] is Match.FULL for route in routes)


class SecurityHeaders:
    """Add the security headers to every response that does not set them itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._headers = [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in self._headers if k not in present]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def client_key(scope: Scope, forward_key: str = "") -> str:
    """The client a request counts against: the peer, or the proxy's X-Forwarded-For entry.

    haloyd listens on loopback behind haloy-proxy, so the peer is usually the proxy. Its
    X-Forwarded-For (the last entry, which it appended) is believed only from loopback and
    with the forward key it adds last (any local process could claim to be the proxy).
    """
    peer = scope["client"][0] if scope.get("client") else "unknown"
    if forward_key and peer in _LOOPBACK:
        headers = Headers(scope=scope)
        shown = headers.getlist(_FORWARD_KEY)
        if shown and hmac.compare_digest(shown[-1].encode(), forward_key.encode()):
            forwarded = headers.get("x-forwarded-for")
            if forwarded:
                return forwarded.rsplit(",", 1)[-1].strip() or peer
    return peer


class RateLimit:
    """Answer 429 with Retry-After once a client's token bucket is empty."""

    def __init__(
        self,
        app: ASGIApp,
        limiter: RateLimiter,
        exempt: Sequence[BaseRoute] = (),
        clock: Callable[[], float] = time.monotonic,
        forward_key: str = "",
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.exempt = exempt
        self.clock = clock
        self.forward_key = forward_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and not _matches(self.exempt, scope):
            decision = self.limiter.check(client_key(scope, self.forward_key), self.clock())
            if not decision.allowed:
                retry = max(1, math.ceil(decision.retry_after))
                response = problem_response(
                    429,
                    "too many requests from this client",
                    hint=f"wait {retry} s and retry",
                    headers={"retry-after": str(retry)},
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class BearerAuth:
    """Require `Authorization: Bearer <token>` on every route but the public ones."""

    def __init__(self, app: ASGIApp, token: str, public: Sequence[BaseRoute] = ()) -> None:
        self.app = app
        self._token = token.encode()
        self.public = public

    def _authorized(self, scope: Scope) -> bool:
        scheme, _, presented = (Headers(scope=scope).get("authorization") or "").partition(" ")
        # compare_digest: the time taken must not tell how much of a guess was right.
        return scheme.lower() == "bearer" and hmac.compare_digest(
            presented.strip().encode(), self._token
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # WebSocket handshakes (the tunnel) need the token too; the 401 goes out as a denial.
        if scope["type"] in ("http", "websocket") and not _matches(self.public, scope):
            if not self._authorized(scope):
                response = problem_response(
                    401,
                    "missing or wrong API token",
                    hint="send 'Authorization: Bearer <token>' with the token from the "
                    "server's /etc/haloy/.env (haloy server add stores it for the CLI)",
                    headers={"www-authenticate": 'Bearer realm="haloyd"'},
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class BodyLimit:
    """Cap request bodies: refuse a too-large Content-Length at once, count streamed bytes."""

    def __init__(
        self, app: ASGIApp, default: int, overrides: Sequence[tuple[BaseRoute, int]] = ()
    ) -> None:
        self.app = app
        self.default = default
        self.overrides = overrides

    def limit_for(self, scope: Scope) -> int:
        """The byte cap for this request's route."""
        for route, limit in self.overrides:
            if route.matches(scope)[0] is Match.FULL:
                return limit
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope)
        too_large = ApiProblem(
            413,
            f"the request body is larger than {limit} bytes",
            hint="send a smaller body; layers are uploaded one per request",
        )
        declared = Headers(scope=scope).get("content-length")
        size = whole_number(declared)
        if size is not None and size > limit:
            await problem_response(413, too_large.message, hint=too_large.hint)(
                scope, receive, send
            )
            return
        received = 0

        async def capped_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Raised inside the endpoint's read, so the error handlers answer it.
                    raise too_large
            return message

        await self.app(scope, capped_receive, send)
