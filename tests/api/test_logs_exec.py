"""GET /v1/apps/{app}/logs and POST /v1/apps/{app}/exec on real containers of a real dockerd."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from ulid import ULID

from haloy.daemon.api.app_containers import pick
from haloy.daemon.api.exec import Capped, ExecHandlers, all_or_cancel, parse_request
from haloy.daemon.api.logs import parse_tail, split_stamped, time_key
from haloy.daemon.api.problems import ApiProblem
from haloy.runtime.docker import ContainerSummary, DockerRuntime
from tests.api.conftest import RunningApi, StartApi
from tests.fixtures.docker import TEST_IMAGE, docker_cli

SCRIPT = "echo out-1; echo err-1 >&2; echo out-2; touch /tmp/ready; exec sleep 300"


@pytest.fixture
def app_containers(test_image: str) -> Iterator[tuple[str, list[str]]]:
    """Two containers of one app (two deployments), printing to stdout and stderr."""
    app = f"logs-{str(ULID()).lower()}"
    ids = []
    for n, dep in enumerate(sorted([str(ULID()), str(ULID())])):
        ids.append(docker_cli(
            "run", "-d", "--network", "none", "--label", f"dev.haloy.appName={app}",
            "--label", f"dev.haloy.deployment-id={dep}", "--entrypoint", "/bin/sh",
            f"{TEST_IMAGE}:v1", "-c", SCRIPT.replace("out-", f"c{n}-out-"),
        ))
    for cid in ids:  # readiness: the script wrote its lines before touching the file
        docker_cli("exec", cid, "/bin/sh", "-c",
                   "while [ ! -e /tmp/ready ]; do sleep 0.05; done")
    yield app, ids
    docker_cli("rm", "-f", *ids, check=False)


async def events(lines: AsyncIterator[str], stop_after: int | None = None) -> list[Any]:
    out: list[Any] = []
    async for line in lines:
        if line.startswith("event: end"):
            break
        if line.startswith("data: "):
            out.append(json.loads(line.removeprefix("data: ")))
            if stop_after is not None and len(out) >= stop_after:
                break
    return out


def test_pure_parts() -> None:
    assert parse_tail(None) == 100 and parse_tail("0") == 0
    for bad in ("-1", "x", "10001"):
        with pytest.raises(ApiProblem):
            parse_tail(bad)
    assert time_key("2026-01-01T00:00:00.5Z") > time_key("2026-01-01T00:00:00.123456789Z")
    assert time_key("2026-01-01T00:00:01Z") > time_key("2026-01-01T00:00:00.9Z")
    lines = split_stamped("abc", "stderr", "2026-01-01T00:00:00Z hello world\n2026-x b\n")
    assert [(ln.time, ln.line) for ln in lines] == [
        ("2026-01-01T00:00:00Z", "hello world"), ("2026-x", "b")]


async def test_logs_finite_newest_container_with_streams_marked(
    api: RunningApi, app_containers: tuple[str, list[str]]
) -> None:
    app, ids = app_containers
    async with api.client() as c, c.stream(
        "GET", f"/v1/apps/{app}/logs", params={"follow": "false"}
    ) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event")
        got = await events(r.aiter_lines())
    assert {e["container"] for e in got} == {ids[1][:12]}  # the newest deployment's
    # Each stream keeps its order; across the two pipes Docker's arrival times decide.
    assert [e["line"] for e in got if e["stream"] == "stdout"] == ["c1-out-1", "c1-out-2"]
    assert [e["line"] for e in got if e["stream"] == "stderr"] == ["err-1"]


async def test_logs_all_tail_and_one_container(
    api: RunningApi, app_containers: tuple[str, list[str]]
) -> None:
    app, ids = app_containers
    async with api.client() as c:
        async with c.stream("GET", f"/v1/apps/{app}/logs",
                            params={"follow": "false", "all": "true", "tail": "1"}) as r:
            got = await events(r.aiter_lines())
        # tail applies per container over both streams: one line of each (which one of
        # the last two depends on when Docker read each pipe).
        assert sorted(e["container"] for e in got) == sorted(i[:12] for i in ids)
        assert all(e["line"] in ("c0-out-2", "c1-out-2", "err-1") for e in got)
        async with c.stream("GET", f"/v1/apps/{app}/logs",
                            params={"follow": "false", "container": ids[0][:10]}) as r:
            got = await events(r.aiter_lines())
        assert {e["container"] for e in got} == {ids[0][:12]}
        r404 = await c.get(f"/v1/apps/{app}/logs", params={"container": "ffffffffff"})
        assert r404.status_code == 404
        assert (await c.get("/v1/apps/no-such-app/logs")).status_code == 404
        assert (await c.get(f"/v1/apps/{app}/logs", params={"tail": "x"})).status_code == 400


async def test_logs_follow_streams_new_lines(
    api: RunningApi, app_containers: tuple[str, list[str]]
) -> None:
    app, ids = app_containers
    async with api.client() as c, c.stream(
        "GET", f"/v1/apps/{app}/logs", params={"tail": "1"}
    ) as r:
        lines = r.aiter_lines()
        first = await events(lines, stop_after=1)  # the follow is running now
        docker_cli("exec", ids[1], "/bin/sh", "-c", "echo late-line > /proc/1/fd/1")
        # Race-free: a pump that connects after the write still gets it as its tail line.
        seen = first
        while not any(e["line"] == "late-line" for e in seen):
            assert len(seen) < 5, seen
            seen += await events(lines, stop_after=1)
    late = next(e for e in seen if e["line"] == "late-line")
    assert late["stream"] == "stdout" and late["container"] == ids[1][:12]


@pytest.fixture
async def exec_api(start_api: StartApi) -> AsyncIterator[RunningApi]:
    """An API with exec mounted; output capped at 4 KiB so truncation is cheap to show."""
    engine = DockerRuntime.open()
    yield await start_api(groups=[ExecHandlers(engine, max_output=4096)])
    await engine.close()


def test_exec_pure_parts() -> None:
    capped = Capped(5)
    capped.add(b"abc")
    capped.add(b"defg")
    assert capped.text() == "abcde" and capped.truncated
    with pytest.raises(ApiProblem):
        parse_request(b'{"argv": []}')
    assert parse_request(b'{"argv": ["ls"], "allContainers": true}').all_containers


async def test_one_failure_cancels_and_awaits_the_others() -> None:
    cancelled = asyncio.Event()

    async def slow() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def refused() -> None:
        await asyncio.sleep(0)
        raise ApiProblem(409, "cannot exec")

    with pytest.raises(ApiProblem):
        await all_or_cancel([slow(), refused()])
    assert cancelled.is_set()
    assert await all_or_cancel([asyncio.sleep(0, "a"), asyncio.sleep(0, "b")]) == ["a", "b"]


def FakeContainer(cid: str, dep: str) -> ContainerSummary:
    """What `pick` reads of an engine container: its id and labels."""
    return ContainerSummary(id=cid, name=cid, labels={"dev.haloy.deployment-id": dep},
                            state="running")


def test_pick_refuses_an_ambiguous_prefix() -> None:
    found = [FakeContainer("abc1", "01A"), FakeContainer("abc2", "01B")]
    assert [c.id for c in pick(found, "abc2", False)] == ["abc2"]
    assert [c.id for c in pick(found, None, False)] == ["abc2"]  # the newest deployment
    with pytest.raises(ApiProblem) as ambiguous:
        pick(found, "abc", False)
    assert ambiguous.value.status == 409


async def test_exec_newest_container_exit_code_and_streams(
    exec_api: RunningApi, app_containers: tuple[str, list[str]]
) -> None:
    app, ids = app_containers
    async with exec_api.client() as c:
        r = await c.post(f"/v1/apps/{app}/exec",
                         json={"argv": ["sh", "-c", "echo out; echo err >&2; exit 3"]})
        assert r.status_code == 200, r.text
        assert r.json()["results"] == [{
            "containerId": ids[1][:12], "exitCode": 3, "stdout": "out\n", "stderr": "err\n",
            "timedOut": False, "killed": False, "truncated": False}]
        every = (await c.post(f"/v1/apps/{app}/exec",
                              json={"argv": ["sh", "-c", "echo $HOSTNAME"],
                                    "allContainers": True})).json()["results"]
        assert sorted(x["containerId"] for x in every) == sorted(i[:12] for i in ids)
        assert all(x["exitCode"] == 0 and x["stdout"] for x in every)
        one = (await c.post(f"/v1/apps/{app}/exec",
                            json={"argv": ["true"], "container": ids[0][:10]})).json()
        assert [x["containerId"] for x in one["results"]] == [ids[0][:12]]
        # No `true` in the test image: the engine's exit code for a command it cannot run.
        assert one["results"][0]["exitCode"] in (126, 127)


async def test_exec_output_cap_timeout_and_errors(
    exec_api: RunningApi, app_containers: tuple[str, list[str]]
) -> None:
    app, _ = app_containers
    loud = "i=0; while [ $i -lt 2000 ]; do echo 12345; i=$((i+1)); done"
    async with exec_api.client() as c:
        big = (await c.post(f"/v1/apps/{app}/exec",
                            json={"argv": ["sh", "-c", loud]})).json()["results"][0]
        assert big["truncated"] and big["stdout"] == ("12345\n" * 2000)[:4096]
        assert big["exitCode"] == 0
        # A child in the background holds the output open: the whole tree is killed.
        slow = (await c.post(f"/v1/apps/{app}/exec", json={
            "argv": ["sh", "-c", "sleep 31 & sleep 32"], "timeout": 0.5})).json()["results"][0]
        assert slow["timedOut"] and slow["killed"] and slow["exitCode"] is None
        # The timed-out command and its child were killed, not left running in the container.
        left = (await c.post(f"/v1/apps/{app}/exec", json={"argv": [
            "sh", "-c", "/bin/busybox ps | /bin/busybox grep -c '[s]leep 3[12]'"]})).json()
        assert left["results"][0]["stdout"].strip() == "0"
        assert (await c.post(f"/v1/apps/{app}/exec", json={"argv": []})).status_code == 400
        assert (await c.post(f"/v1/apps/{app}/exec",
                             json={"argv": ["ls"], "timeout": 0})).status_code == 422
        assert (await c.post("/v1/apps/no-such-app/exec",
                             json={"argv": ["ls"]})).status_code == 404
        assert (await c.post(f"/v1/apps/{app}/exec", json={"argv": ["ls"]},
                             headers={"authorization": "Bearer nope"})).status_code == 401
