"""Fixtures for certificate tests: a real HTTP listener serving the challenge store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import uvicorn

from haloy.certs.challenges import ChallengeApp, ChallengeStore
from tests.fixtures.polling import await_until


@dataclass(frozen=True)
class ChallengeServer:
    store: ChallengeStore
    port: int


@asynccontextmanager
async def serve_challenges(
    store: ChallengeStore, port: int, app: Any = None
) -> AsyncIterator[ChallengeServer]:
    """uvicorn on 127.0.0.1:`port` answering /.well-known/acme-challenge/ from `store`."""
    config = uvicorn.Config(
        app or ChallengeApp(store), host="127.0.0.1", port=port, log_level="warning",
        lifespan="off",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())

    def started() -> bool:
        if task.done():
            task.result()
            raise RuntimeError("challenge server exited before listening")
        return bool(server.started)  # readiness flag set once the socket listens

    await await_until("the challenge server to listen", started, interval=0.01)
    bound = int(server.servers[0].sockets[0].getsockname()[1])
    try:
        yield ChallengeServer(store, bound)
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def challenge_server() -> AsyncIterator[ChallengeServer]:
    async with serve_challenges(ChallengeStore(), 0) as srv:
        yield srv
