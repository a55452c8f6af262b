"""haloyd's own log: the ring buffer in memory, then `GET /v1/server/logs` and
`haloy server logs` against a real `haloyd serve` (with haloy-proxy) in a temp layout."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from haloy.daemon.api.server_logs import LogRing
from tests.cli.test_status import cli_env, run_haloy
from tests.fixtures.haloyd_server import HaloydServer, serving
from tests.fixtures.proxy import ProxyProcess


def _logger(ring: LogRing, name: str) -> logging.Logger:
    log = logging.getLogger(name)
    log.setLevel(logging.DEBUG)
    log.propagate = False
    log.addHandler(ring)
    return log


def test_ring_keeps_the_newest_records_numbered() -> None:
    ring = LogRing(capacity=3)
    log = _logger(ring, "haloy.test.ring")
    try:
        log.debug("below the ring's level")
        for i in range(5):
            log.info("record %d", i)
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("failed")
        records, last = ring.tail(10)
        assert last == 6
        assert [r.message for r in records] == ["record 3", "record 4",
                                                "failed (ValueError: boom)"]
        assert records[-1].level == "error" and records[-1].logger == "haloy.test.ring"
        assert [r.seq for r in ring.since(5)] == [6]
        assert ring.tail(0) == ([], 6)
    finally:
        log.removeHandler(ring)


async def test_follow_wakes_on_records_from_other_threads() -> None:
    ring = LogRing()
    log = _logger(ring, "haloy.test.follow")
    try:
        stream = ring.follow(0, heartbeat=30)
        log.info("before")
        assert (await anext(stream)).message == "before"  # type: ignore[union-attr]
        nxt = asyncio.ensure_future(anext(stream))
        await asyncio.to_thread(log.info, "from a worker thread")
        record = await asyncio.wait_for(nxt, 10)
        assert record is not None and record.message == "from a worker thread"
        await stream.aclose()
        quiet = ring.follow(record.seq, heartbeat=0.01)
        assert await anext(quiet) is None  # a heartbeat, not a record
        await quiet.aclose()
    finally:
        log.removeHandler(ring)


def _records(text: str) -> list[dict[str, object]]:
    return [json.loads(line[5:]) for line in text.splitlines()
            if line.startswith("data:") and line != "data: {}"]


@pytest.mark.docker
async def test_server_logs_of_a_real_haloyd(
    tmp_path: Path, test_image: str, docker_network: str,
    proxy_factory: Callable[..., ProxyProcess],
) -> None:
    hd = HaloydServer.under(tmp_path, docker_network)
    async with serving(hd, init_args=("--api-domain", "api.svc.test"),
                       config={"proxy.https_listen": "off"}, proxy_factory=proxy_factory):
        client, base, token = hd.client, hd.url, hd.token
        caps = (await client.get("/v1/version")).json()["capabilities"]
        assert {"registries", "images.prune", "server.logs"} <= set(caps)
        assert (await client.get("/v1/registries")).json() == {"registries": []}

        finite = await client.get("/v1/server/logs", params={"follow": "false", "tail": "500"})
        assert finite.status_code == 200
        assert finite.text.rstrip().endswith("event: end\ndata: {}")
        assert any("API listening" in str(r["message"]) for r in _records(finite.text))

        # Follow from now: a record logged after the stream opened arrives on it.
        async with client.stream("GET", "/v1/server/logs", params={"tail": "0"}) as resp:
            lines = resp.aiter_lines()
            pruned = await client.post("/v1/images/prune", json={"dryRun": False, "app": "nx"})
            assert pruned.status_code == 200, pruned.text
            async with asyncio.timeout(20):
                async for line in lines:
                    if line.startswith("data:") and "image prune removed" in line:
                        break

        env = {**cli_env(tmp_path, token)}
        res = await run_haloy("server", "logs", "--no-follow", "--tail", "500",
                              "--server", base, env=env)
        assert res.code == 0, res.err
        assert "API listening" in res.out and "INFO" in res.out
        bad = await run_haloy("server", "logs", "--no-follow", "--tail", "20000",
                              "--server", base, env=env)
        assert bad.code == 2  # click rejects it before any request
