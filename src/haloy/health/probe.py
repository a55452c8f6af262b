"""One HTTP health check: GET the health path, 2xx/3xx is healthy, redirects not followed."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

# Enough for any status line; a backend that sends more before CRLF is broken anyway.
_MAX_STATUS_LINE = 4096


@dataclass(frozen=True)
class ProbeResult:
    """Outcome of one check: healthy or not, and why not."""

    ok: bool
    status: int | None = None
    error: str | None = None


async def probe(address: str, port: int, path: str, timeout: float) -> ProbeResult:
    """GET http://address:port/path within `timeout` seconds (connect + status line)."""
    try:
        async with asyncio.timeout(timeout):
            return await _get_status(address, port, path)
    except TimeoutError:
        return ProbeResult(False, error=f"timed out after {timeout:g}s")
    except OSError as exc:
        return ProbeResult(False, error=exc.strerror or str(exc) or type(exc).__name__)


async def _get_status(address: str, port: int, path: str) -> ProbeResult:
    reader, writer = await asyncio.open_connection(address, port)
    try:
        # HTTP/1.0 + Connection: close keeps the check one short exchange on any server.
        writer.write(
            f"GET {path} HTTP/1.0\r\nHost: {address}:{port}\r\n"
            "User-Agent: haloy-health\r\nConnection: close\r\n\r\n".encode("latin-1")
        )
        await writer.drain()
        line = await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError:
        return ProbeResult(False, error="connection closed before a response")
    except asyncio.LimitOverrunError:
        return ProbeResult(False, error="malformed response")
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass
    parts = line[:_MAX_STATUS_LINE].split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        return ProbeResult(False, error="malformed status line")
    status = int(parts[1])
    if 200 <= status < 400:
        return ProbeResult(True, status)
    return ProbeResult(False, status, f"HTTP {status}")
