"""Hold many idle keep-alive client connections open against one proxy."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

_REQUEST = b"GET / HTTP/1.1\r\nHost: bench.local\r\n\r\n"
# Bounded so the proxies' accept backlogs never overflow (which would add SYN retry delays).
_OPEN_CONCURRENCY = 200


@dataclass(frozen=True)
class IdleResult:
    """How many connections were open and answered when the probe ran, and its value."""

    opened: int
    failed: int
    still_open: int
    probe: int


async def _open_one(
    port: int, gate: asyncio.Semaphore
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
    async with gate:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(_REQUEST)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10.0)
            if not head.startswith(b"HTTP/1.1 200"):
                writer.close()
                return None
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await asyncio.wait_for(reader.readexactly(length), 10.0)
            return reader, writer
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
            return None


async def hold_idle(
    port: int, count: int, probe: Callable[[], int], settle: Callable[[], Awaitable[None]]
) -> IdleResult:
    """Open `count` connections (one request each), settle, run `probe`, then close them all."""
    gate = asyncio.Semaphore(_OPEN_CONCURRENCY)
    results = await asyncio.gather(*(_open_one(port, gate) for _ in range(count)))
    conns = [c for c in results if c is not None]
    try:
        await settle()
        value = probe()
        # A connection the proxy has closed meanwhile reads EOF at once.
        still_open = sum(1 for reader, _ in conns if not reader.at_eof())
        return IdleResult(len(conns), count - len(conns), still_open, value)
    finally:
        for _, writer in conns:
            writer.close()
        for _, writer in conns:
            with contextlib.suppress(OSError, ConnectionError):
                await writer.wait_closed()
