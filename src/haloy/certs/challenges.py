"""HTTP-01 challenge store (token → key authorization) and the handler that serves it.

The ACME issuer runs on a worker thread and writes here; haloyd's API listener answers
`GET /.well-known/acme-challenge/<token>` from the event loop (RFC 8555 §8.3), and haloy-proxy
forwards that path to it from port 80. Mount `ChallengeApp(store)` as an ASGI app, or call
`challenge_response(store, path)` from any other handler.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

PREFIX = "/.well-known/acme-challenge/"
# RFC 8555 §8.3: the token is base64url (no padding); it must not contain path separators.
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class ChallengeStore:
    """Thread-safe in-memory map of pending HTTP-01 tokens."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[str, str] = {}

    def put(self, token: str, key_authorization: str) -> None:
        """Publish a token's key authorization."""
        with self._lock:
            self._tokens[token] = key_authorization

    def remove(self, token: str) -> None:
        """Withdraw a token once its challenge is decided."""
        with self._lock:
            self._tokens.pop(token, None)

    def get(self, token: str) -> str | None:
        """The key authorization for `token`, if pending."""
        with self._lock:
            return self._tokens.get(token)

    def __len__(self) -> int:
        with self._lock:
            return len(self._tokens)


def challenge_response(store: ChallengeStore, path: str) -> tuple[int, bytes]:
    """(status, body) for a request path; 404 for anything that is not a pending token."""
    if not path.startswith(PREFIX):
        return 404, b"not found\n"
    token = path[len(PREFIX) :]
    if not _TOKEN_RE.match(token):
        return 404, b"not found\n"
    key_authz = store.get(token)
    if key_authz is None:
        return 404, b"unknown challenge token\n"
    return 200, key_authz.encode()


class ChallengeApp:
    """ASGI app answering `/.well-known/acme-challenge/<token>` (full path, GET/HEAD)."""

    def __init__(self, store: ChallengeStore) -> None:
        self.store = store

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # lifespan and websocket scopes: nothing to do
        if scope["method"] not in ("GET", "HEAD"):
            status, body = 405, b"method not allowed\n"
        else:
            # Under a starlette Mount the path is still the full path (root_path + rest).
            status, body = challenge_response(self.store, scope["path"])
        headers = [
            (b"content-type", b"text/plain"),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        if scope["method"] == "HEAD":
            body = b""
        await send({"type": "http.response.body", "body": body})
