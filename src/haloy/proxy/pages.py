"""Short built-in responses: error pages and redirects, built once per status."""

from __future__ import annotations

from functools import lru_cache
from http import HTTPStatus

_SERVER = b"Server: haloy\r\n"


@lru_cache(maxsize=64)
def error_response(status: int, close: bool, head_only: bool = False) -> bytes:
    """A complete plain-text response for `status`."""
    reason = HTTPStatus(status).phrase.encode()
    body = b"%d %b\n" % (status, reason)
    return b"".join(
        (
            b"HTTP/1.1 %d %b\r\n" % (status, reason),
            _SERVER,
            b"Content-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n" % len(body),
            b"Connection: close\r\n" if close else b"",
            b"\r\n",
            b"" if head_only else body,
        )
    )


def redirect_response(location: bytes, close: bool, head_only: bool = False) -> bytes:
    """A 301 to `location` (permanent: aliases and HTTPS are stable decisions)."""
    body = b"" if head_only else b"Moved Permanently\n"
    return b"".join(
        (
            b"HTTP/1.1 301 Moved Permanently\r\n",
            _SERVER,
            b"Location: ",
            location,
            b"\r\nContent-Type: text/plain\r\nContent-Length: 18\r\n",
            b"Connection: close\r\n" if close else b"",
            b"\r\n",
            body,
        )
    )


def with_close(response: bytes) -> bytes:
    """One of our responses marked as the last on its connection."""
    end = response.find(b"\r\n\r\n")
    if response.find(b"\r\nConnection: close\r\n", 0, end + 2) >= 0:
        return response
    return response[:end] + b"\r\nConnection: close" + response[end:]


def with_port(host: bytes, port: int, default: int) -> bytes:
    """`host` with `:port` unless the port is the scheme's default."""
    return host if port == default else b"%b:%d" % (host, port)


def request_port(raw_host: bytes) -> int | None:
    """The port given in a Host header value, if any."""
    host = raw_host.strip()
    colon = host.rfind(b":")
    if colon < 0 or host.endswith(b"]"):
        return None
    digits = host[colon + 1 :]
    # Only a real port is echoed into a Location (int() would take b"+80" or b" 80").
    if not digits.isdigit() or len(digits) > 5:
        return None
    port = int(digits)
    return port if 0 < port < 65536 else None
