"""Client of the proxy's control socket: one JSON request line, one JSON reply line."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

# Snapshots of a few thousand routes fit easily; the reader's line limit must allow them.
LINE_LIMIT = 2**24


async def send_control(
    socket_path: Path | str, request: dict[str, Any], timeout: float = 5.0
) -> dict[str, Any]:
    """Send one request; return the reply. Raises OSError or TimeoutError if unreachable."""
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_unix_connection(str(socket_path), limit=LINE_LIMIT)
        try:
            writer.write(json.dumps(request, separators=(",", ":")).encode() + b"\n")
            await writer.drain()
            line = await reader.readline()
        finally:
            writer.close()
    if not line:
        return {"ok": False, "error": "the proxy closed the control connection without a reply"}
    reply = json.loads(line)
    return reply if isinstance(reply, dict) else {"ok": False, "error": "malformed reply"}
