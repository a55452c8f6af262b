"""The control socket's protocol: one JSON request line, one JSON reply line, over a unix socket.

    {"op":"put_snapshot","snapshot":{...}} -> {"ok":true,"config_hash":...,"generation":N}
    {"op":"status"}                        -> {"ok":true,"config_hash":...,"routes":[...],...}
    {"op":"reload_certs"}                  -> {"ok":true,"certificates":N}
    {"op":"takeover"}                      -> {"ok":true,"generation":N,"pids":[...],
                                               "draining":[...]}   (supervised proxies only)

A request that fails gets {"ok":false,"error":"<reason>"}. haloyd, `haloy-proxy reload` and the
proxy's supervisor are clients (`send_control`); each worker and the supervisor serve it
(haloy.proxy.control).
"""

from __future__ import annotations

import asyncio
import json
from enum import StrEnum
from pathlib import Path
from typing import Any

# Snapshots of a few thousand routes fit easily; both ends' line limits must allow them.
LINE_LIMIT = 2**24
# A local proxy answers in milliseconds; a few seconds covers a loaded host without letting
# haloyd's loops hang on a stuck one.
CONTROL_TIMEOUT = 5.0


class Op(StrEnum):
    """What a control request asks for (its `op`)."""

    PUT_SNAPSHOT = "put_snapshot"
    STATUS = "status"
    RELOAD_CERTS = "reload_certs"
    TAKEOVER = "takeover"


def error_reply(reason: str) -> dict[str, Any]:
    """The reply of a request that failed."""
    return {"ok": False, "error": reason}


async def send_control(
    socket_path: Path | str, request: dict[str, Any], timeout: float = CONTROL_TIMEOUT
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
        return error_reply("the proxy closed the control connection without a reply")
    reply = json.loads(line)
    return reply if isinstance(reply, dict) else error_reply("malformed reply")
