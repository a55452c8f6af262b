"""Following a container's log: one engine response per stream, closed on every way out.

aiodocker's `log(follow=True)` releases its response only at the end of the stream: a
follow cancelled midway (the client went away) keeps its engine connection open and out of
the pool for good. Here the response is closed in a `finally`, so cancellation, an error
and the generator being closed all give the connection back.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import aiodocker
import aiohttp
from aiodocker.multiplexed import multiplexed_result_stream

from haloy.runtime.docker import CALL_TIMEOUT, POOL_WAIT_S, translate_errors

# A follow may stay quiet for days; only the wait for a pooled connection is bounded.
_FOLLOW_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_read=None, connect=POOL_WAIT_S)


async def follow_log(
    client: aiodocker.Docker, container_id: str, stream: str, tail: int
) -> AsyncGenerator[str, None]:
    """Chunks of `stream` ("stdout" or "stderr") with timestamps, as the container writes them.

    Raises RuntimeError_ when the engine refuses or cannot be reached (including a stream
    pool that stays full past its wait).
    """
    with translate_errors(f"following the log of {container_id[:12]}"):
        async with asyncio.timeout(CALL_TIMEOUT):
            info = await client.containers.container(container_id).show()
        tty = bool((info.get("Config") or {}).get("Tty"))
        params = {stream: True, "follow": True, "tail": tail, "timestamps": True}
        async with client._query(
            f"containers/{container_id}/logs", params=params, timeout=_FOLLOW_TIMEOUT
        ) as response:
            try:
                async for chunk in multiplexed_result_stream(  # type: ignore[no-untyped-call]
                    response, is_tty=tty
                ):
                    yield chunk
            finally:
                response.close()  # not release(): the stream has not ended, drop the socket
