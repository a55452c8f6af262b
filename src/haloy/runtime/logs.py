"""Reading a container's log: a finite tail, or a follow holding one engine response.

aiodocker's `log(follow=True)` releases its response only at the end of the stream: a
follow cancelled midway (the client went away) keeps its engine connection open and out of
the pool for good. Here the response is closed in a `finally`, so cancellation, an error
and the generator being closed all give the connection back. Follows use the stream pool,
never the one discovery and deploys use.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import aiodocker
import aiohttp
from aiodocker.multiplexed import multiplexed_result_stream

from haloy.runtime.engine_calls import CALL_TIMEOUT, POOL_WAIT_S, translate_errors

# A follow may stay quiet for days; only the wait for a pooled connection is bounded.
_FOLLOW_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_read=None, connect=POOL_WAIT_S)


class ContainerLogs:
    """Log reads on one engine: finite ones on the call pool, follows on the stream pool."""

    def __init__(self, client: aiodocker.Docker, streams: aiodocker.Docker) -> None:
        self.client = client
        self.streams = streams

    async def read(self, container_id: str, stream: str, tail: int) -> list[str]:
        """The last `tail` lines of `stream` ("stdout" or "stderr"), with timestamps, in the
        chunks the engine sent them."""
        with translate_errors(f"reading the log of {container_id[:12]}"):
            async with asyncio.timeout(CALL_TIMEOUT):
                chunks = await self.client.containers.container(container_id).log(
                    stdout=stream == "stdout", stderr=stream == "stderr", tail=tail,
                    timestamps=True)
        return [str(c) for c in chunks]

    async def follow(
        self, container_id: str, stream: str, tail: int
    ) -> AsyncGenerator[str, None]:
        """Chunks of `stream` ("stdout" or "stderr") with timestamps, as the container writes
        them.

        Raises EngineError when the engine refuses or cannot be reached (including a stream
        pool that stays full past its wait).
        """
        with translate_errors(f"following the log of {container_id[:12]}"):
            async with asyncio.timeout(CALL_TIMEOUT):
                info = await self.streams.containers.container(container_id).show()
            tty = bool((info.get("Config") or {}).get("Tty"))
            params = {stream: True, "follow": True, "tail": tail, "timestamps": True}
            async with self.streams._query(
                f"containers/{container_id}/logs", params=params, timeout=_FOLLOW_TIMEOUT
            ) as response:
                try:
                    async for chunk in multiplexed_result_stream(  # type: ignore[no-untyped-call]
                        response, is_tty=tty
                    ):
                        yield chunk
                finally:
                    response.close()  # not release(): the stream has not ended, drop the socket
