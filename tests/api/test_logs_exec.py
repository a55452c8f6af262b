"""GET /v1/apps/{app}/logs against real containers of a real dockerd."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from ulid import ULID

from haloy.daemon.api.logs import parse_tail, split_stamped, time_key
from haloy.daemon.api.problems import ApiProblem
from tests.api.conftest import RunningApi
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
