"""Differential framing tests: request smuggling and response desync against a live proxy.

A real haloy-proxy routes app.test to a recording backend (recording_backend.py). Each request
input is parsed by h11, the strict reference, sent to the proxy, and the three views are held
against each other (desync_check.py). Inputs: the hand-made corpus (smuggling_corpus.py) and
hypothesis-generated streams (framing_strategies.py). For responses, the backend answers with
hostile bytes (response_check.py) and the client stream is checked likewise.

One proxy serves the whole module: a backend connection a bad input leaves in the pool is part
of what is tested, and the next input shows it.

HALOY_DIFF_EXAMPLES sets the number of generated examples per test (and sweeps every byte in
the Transfer-Encoding obfuscations); HALOY_DIFF_REPORT names a file that gets one JSON line
per failing input and per test, and makes a test go on after a failure (bench/differential).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from tests.fixtures.proxy import ProxyProcess, start_proxy
from tests.proxy.desync_check import CANARY, exchange, violations
from tests.proxy.framing_strategies import request_stream
from tests.proxy.h11_views import parse_requests
from tests.proxy.http_peers import route, snapshot
from tests.proxy.recording_backend import BackendRequest, RecordingBackend, Script
from tests.proxy.response_check import (
    Hostile,
    hostile_response,
    response_corpus,
    response_violations,
)
from tests.proxy.smuggling_corpus import corpus

EXAMPLES = int(os.environ.get("HALOY_DIFF_EXAMPLES") or 0)
REPORT = os.environ.get("HALOY_DIFF_REPORT")
CORPUS = corpus(exhaustive=EXAMPLES > 0)
CLASSES = sorted({c.klass for c in CORPUS})
RESPONSES = response_corpus()
# CI sizes: with the corpus, the module runs in well under a minute on a 2-core machine.
GENERATED = settings(
    max_examples=EXAMPLES or 200, deadline=None, suppress_health_check=list(HealthCheck),
    # One failure shrunk to its minimal input is the report; shrinking every distinct one
    # would take minutes while the proxy still has several bugs.
    report_multiple_bugs=False,
)
if REPORT:  # a long run counts fresh examples; it does not replay saved failures
    GENERATED = settings(GENERATED, database=None)
Property = Callable[[str, object], None]


@dataclass
class Target:
    """A proxy routing app.test to a recording backend; counts runs and failing inputs."""

    proxy: ProxyProcess
    backend: RecordingBackend
    scripts: dict[bytes, Script]
    run: int = 0  # run ids are unique across the module: the backend files requests by run
    test: str = ""
    inputs: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)
    # The input run before: a backend connection it left in the pool can be what fails next.
    previous: bytes = b""

    def _next(self) -> int:
        self.run += 1
        self.inputs += 1
        return self.run

    def _failed(self, klass: str, name: str, raw: bytes, found: list[str], **extra: object) -> None:
        self.failures.append({"test": self.test, "class": klass, "name": name,
                              "input": raw.decode("latin-1"), "violations": found,
                              "previous": self.previous.decode("latin-1"), **extra})

    def check(self, klass: str, name: str, raw: bytes, cuts: tuple[int, ...] = ()) -> list[str]:
        """One request input (the canary appended) through the proxy; its violations."""
        run = self._next()
        data = raw + CANARY
        result = exchange(self.proxy.http_port, self.backend, run, data, cuts)
        found = violations(result, parse_requests(data))
        if found:
            self._failed(klass, name, raw, found, cuts=list(cuts),
                         reply=result.reply[:600].decode("latin-1"))
        self.previous = raw
        return found

    def check_response(self, h: Hostile) -> list[str]:
        """One hostile backend answer, the requests after it, and a fresh client after that."""
        run = self._next()
        tag = b"%d" % run
        self.scripts[b"/r/" + tag] = Script(list(h.chunks), h.close)
        data = (h.method + b" /r/" + tag + b" HTTP/1.1\r\nHost: app.test\r\n\r\n"
                b"GET /next/" + tag + b" HTTP/1.1\r\nHost: app.test\r\n\r\n" + CANARY)
        first = exchange(self.proxy.http_port, self.backend, run, data)
        after = exchange(self.proxy.http_port, self.backend, run,
                         b"GET /after/" + tag + b" HTTP/1.1\r\nHost: app.test\r\n\r\n" + CANARY)
        found = response_violations(h, tag, first, after)
        if found:
            cuts = [sum(len(c) for c in h.chunks[:i]) for i in range(1, len(h.chunks))]
            self._failed("response", h.name, b"".join(h.chunks), found, cuts=cuts,
                         method=h.method.decode(), close=h.close,
                         reply=first.reply[:600].decode("latin-1"))
        self.previous = b"".join(h.chunks)
        return found

    def report(self, record_property: Property) -> None:
        """Print and record the number of inputs; append to the report file if asked to."""
        print(f"{self.test}: {self.inputs} inputs, {len(self.failures)} with a desync")
        record_property("inputs", self.inputs)
        record_property("failing_inputs", len(self.failures))
        if REPORT:
            with Path(REPORT).open("a") as f:
                for failure in self.failures:
                    f.write(json.dumps(failure) + "\n")
                f.write(json.dumps({"test": self.test, "inputs": self.inputs,
                                    "failures": len(self.failures)}) + "\n")

    def verdict(self) -> str:
        lines = [f"{len(self.failures)} of {self.inputs} inputs failed:"]
        for f in self.failures[:40]:
            lines.append(f"- {f['name']}: {f['input'][:300]!r} {f.get('cuts') or ''}")
            lines += [f"    {v[:600]}" for v in f["violations"][:4]]
        return "\n".join(lines)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    scripts: dict[bytes, Script] = {}

    def respond(req: BackendRequest) -> Script | None:
        return scripts.get(req.target)

    with RecordingBackend(respond) as backend:
        # Short timeouts bound the inputs the proxy must give up on (a backend that never
        # answers); the client half-closes, so no input waits on the head timeout.
        proxy = start_proxy(tmp_path_factory.mktemp("diff"), "--no-access-log",
                            "--header-timeout", "2", "--response-header-timeout", "3",
                            https=False)
        try:
            spec = {"address": "127.0.0.1", "port": backend.port, "deployment_id": "",
                    "state": "active"}
            proxy.put_snapshot(snapshot(route("app.test", spec)))
            yield Target(proxy, backend, scripts)
        finally:
            proxy.stop()


@pytest.fixture
def diff(shared: Target, request: pytest.FixtureRequest) -> Target:
    """The shared proxy, with this test's tally; a plain request must go through first."""
    shared.test, shared.inputs, shared.failures = request.node.name, 0, []
    assert shared.check("sanity", "plain-get", b"GET / HTTP/1.1\r\nHost: app.test\r\n\r\n") == []
    return shared


@pytest.mark.parametrize("klass", CLASSES)
def test_request_corpus(diff: Target, klass: str, record_property: Property) -> None:
    """Every hand-made hostile input of one class: the proxy refuses it or agrees with h11."""
    for case in CORPUS:
        if case.klass == klass:
            diff.check(case.klass, case.name, case.raw, case.cuts)
    diff.report(record_property)
    assert not diff.failures, diff.verdict()


def test_generated_requests(diff: Target, record_property: Property) -> None:
    """Generated heads, framings, chunk encodings and pipelines, cut at random boundaries."""

    @GENERATED
    @given(stream=request_stream())
    def one(stream: tuple[bytes, tuple[int, ...]]) -> None:
        data, cuts = stream
        found = diff.check("generated", "generated", data, cuts)
        if found and not REPORT:
            raise AssertionError("\n".join(found) + f"\ninput {data!r} cut at {cuts}")

    try:
        one()
    finally:
        diff.report(record_property)
    assert not diff.failures, diff.verdict()


def test_response_corpus(diff: Target, record_property: Property) -> None:
    """Hand-made hostile backend answers never desynchronise the client or the pool."""
    for h in RESPONSES:
        diff.check_response(h)
    diff.report(record_property)
    assert not diff.failures, diff.verdict()


def test_generated_responses(diff: Target, record_property: Property) -> None:
    """Generated backend answers: bent framing, interim responses, extra bytes, split writes."""

    @settings(GENERATED, max_examples=EXAMPLES or 100)
    @given(h=hostile_response())
    def one(h: Hostile) -> None:
        found = diff.check_response(h)
        if found and not REPORT:
            raise AssertionError("\n".join(found) + f"\n{h}")

    try:
        one()
    finally:
        diff.report(record_property)
    assert not diff.failures, diff.verdict()
