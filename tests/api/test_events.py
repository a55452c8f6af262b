"""EventLog (in memory) and the SSE endpoint on a real server."""

from __future__ import annotations

import asyncio
import json

import pytest

from haloy.daemon.api import ApiLimits
from haloy.daemon.events import EventHub, EventLog
from haloy.store import Status
from haloy.wire.api import EventKind
from tests.api.conftest import RunningApi, StartApi
from tests.fixtures.polling import await_until


async def test_log_replays_and_wakes_waiters() -> None:
    log = EventLog("01J00000000000000000000001")
    log.append(EventKind.STEP, "pulling image")
    waiter = asyncio.create_task(log.wait_beyond(1))
    await asyncio.sleep(0)  # let the waiter block
    assert not waiter.done()
    log.append(EventKind.INFO, "started replica 1")
    await waiter
    assert [e.seq for e in log.since(0)] == [0, 1]
    assert [e.message for e in log.since(1)] == ["started replica 1"]


async def test_terminal_event_closes_the_log() -> None:
    log = EventLog("01J00000000000000000000001")
    waiter = asyncio.create_task(log.wait_beyond(5))
    log.append(EventKind.FAILED, "health check failed", {"logs": ["boom"]})
    await waiter  # closing wakes even a waiter that wants more events
    assert log.closed
    with pytest.raises(ValueError, match="closed"):
        log.append(EventKind.INFO, "late")


def test_hub_keeps_recent_finished_logs() -> None:
    hub = EventHub(keep=2)
    for i in range(4):
        hub.create(f"d{i}").append(EventKind.SUCCEEDED, "done")
    running = hub.create("d4")
    assert [k for k in ("d0", "d1", "d2", "d3") if hub.get(k)] == ["d3"]
    assert hub.get("d4") is running
    with pytest.raises(ValueError):
        hub.create("d4")


def parse_sse(text: str) -> list[dict[str, str]]:
    messages = []
    for block in text.strip().split("\n\n"):
        lines = [line for line in block.splitlines() if not line.startswith(":")]
        fields = dict(line.split(": ", 1) for line in lines)
        if fields:
            messages.append(fields)
    return messages


DEP = "01J00000000000000000000009"


async def test_sse_replays_from_start_and_ends_on_success(api: RunningApi) -> None:
    log = api.events.create(DEP)
    log.append(EventKind.STEP, "image loaded")
    async with api.client() as c, c.stream("GET", f"/v1/deployments/{DEP}/events") as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["cache-control"] == "no-store"
        lines = r.aiter_lines()
        seen: list[str] = []
        # Read the replayed event, then publish more while the client is connected.
        while not seen or seen[-1] != "":
            seen.append(await anext(lines))
        log.append(EventKind.INFO, "replica 1 healthy")
        log.append(EventKind.SUCCEEDED, "deployed", {"replicas": 1})
        rest = [line async for line in lines]  # ends: the server closes after the terminal event
    messages = parse_sse("\n".join(seen + rest))
    assert [m["event"] for m in messages] == ["step", "info", "succeeded"]
    assert [m["id"] for m in messages] == ["0", "1", "2"]
    last = json.loads(messages[-1]["data"])
    assert last["deploymentId"] == DEP and last["kind"] == "succeeded"
    assert last["data"] == {"replicas": 1}


async def test_sse_of_finished_deployment_replays_and_resumes(api: RunningApi) -> None:
    log = api.events.create(DEP)
    for text in ("a", "b"):
        log.append(EventKind.LOG, text)
    log.append(EventKind.FAILED, "health gate timed out", {"logs": ["listen failed"]})
    async with api.client() as c:
        full = await c.get(f"/v1/deployments/{DEP}/events")
        resumed = await c.get(f"/v1/deployments/{DEP}/events", headers={"last-event-id": "1"})
    assert [m["event"] for m in parse_sse(full.text)] == ["log", "log", "failed"]
    assert [m["id"] for m in parse_sse(resumed.text)] == ["2"]
    assert json.loads(parse_sse(full.text)[-1]["data"])["data"] == {"logs": ["listen failed"]}


async def test_sse_after_restart_comes_from_history(api: RunningApi) -> None:
    dep = await api.store.record("web", "web:1", {})
    await api.store.update(dep.id, Status.FAILED, reason="interrupted")
    async with api.client() as c:
        r = await c.get(f"/v1/deployments/{dep.id}/events")
    [message] = parse_sse(r.text)
    assert message["event"] == "failed"
    assert json.loads(message["data"])["message"] == "interrupted"


async def test_sse_unknown_and_invalid_ids(api: RunningApi) -> None:
    async with api.client() as c:
        unknown = await c.get(f"/v1/deployments/{DEP}/events")
        invalid = await c.get("/v1/deployments/..%2f..%2fetc/events")
        bad = await c.get("/v1/deployments/not-a-ulid/events")
    assert unknown.status_code == 404 and unknown.json()["error"] == "not_found"
    assert bad.status_code == 400 and bad.json()["hint"]
    assert invalid.status_code in (400, 404)


async def test_many_readers_see_the_same_stream(api: RunningApi) -> None:
    log = api.events.create(DEP)
    log.append(EventKind.STEP, "start")

    async def read() -> list[str]:
        async with api.client() as c:
            r = await c.get(f"/v1/deployments/{DEP}/events")
        return [m["event"] for m in parse_sse(r.text)]

    readers = [asyncio.create_task(read()) for _ in range(3)]
    # Publish only once all three have replayed and wait on the log (bounded wait).
    await await_until("3 readers to wait", lambda: log.waiters, lambda n: n >= 3, timeout=10,
                      interval=0.01)
    log.append(EventKind.SUCCEEDED, "done")
    assert await asyncio.gather(*readers) == [["step", "succeeded"]] * 3


async def test_idle_stream_sends_heartbeats(start_api: StartApi) -> None:
    api = await start_api(limits=ApiLimits(sse_heartbeat_s=0.05))
    log = api.events.create(DEP)
    async with api.client() as c, c.stream("GET", f"/v1/deployments/{DEP}/events") as r:
        lines = r.aiter_lines()
        while await anext(lines) != ": keep-alive":
            pass
        log.append(EventKind.FAILED, "stopped")
        rest = [line async for line in lines]
    assert [m["event"] for m in parse_sse("\n".join(rest))] == ["failed"]
