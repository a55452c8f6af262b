"""The route table (pure): compilation, host lookup, round robin, ejection, hold, draining."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from haloy.proxy.exchange import API, Exchange
from haloy.proxy.routes import BackendRegistry, compile_table, draining_changes, normalize_host
from haloy.proxy.service import ProxyService
from haloy.wire.snapshot import parse_snapshot


def _snap(*routes: dict[str, Any], **extra: Any) -> Any:
    return parse_snapshot({"schema_version": 1, "routes": list(routes), **extra})


def _be(port: int, state: str = "active", dep: str = "") -> dict[str, Any]:
    return {"address": "10.0.0.1", "port": port, "state": state, "deployment_id": dep}


@pytest.mark.parametrize(
    ("raw", "host"),
    [
        (b"example.com", b"example.com"),
        (b"Example.COM", b"example.com"),
        (b"example.com:8080", b"example.com"),
        (b"example.com.", b"example.com"),
        (b"EXAMPLE.com.:443", b"example.com"),
        (b" example.com ", b"example.com"),
        (b"[::1]:80", b"[::1]"),
    ],
)
def test_normalize_host(raw: bytes, host: bytes) -> None:
    assert normalize_host(raw) == host


def test_lookup_canonical_alias_and_unknown() -> None:
    table = compile_table(
        _snap({"app": "web", "domain": "example.com", "aliases": ["www.example.com"]}),
        BackendRegistry(),
    )
    m = table.lookup(b"EXAMPLE.com:80")
    assert m is not None and not m.alias and m.entry.route.app == "web"
    m = table.lookup(b"www.example.com.")
    assert m is not None and m.alias and m.entry.canonical == b"example.com"
    assert table.lookup(b"other.com") is None


def test_round_robin_over_active_only() -> None:
    table = compile_table(
        _snap({"app": "w", "domain": "a.com",
               "backends": [_be(1), _be(2, "draining"), _be(3)]}),
        BackendRegistry(),
    )
    entry = table.entries[0]
    picks = [entry.pick(lambda: 0.0) for _ in range(4)]
    assert [b.port for b in picks if b] == [1, 3, 1, 3]


def test_ejected_backend_skipped_until_all_are() -> None:
    table = compile_table(
        _snap({"app": "w", "domain": "a.com", "backends": [_be(1), _be(2)]}), BackendRegistry()
    )
    entry = table.entries[0]
    entry.active[0].ejected_until = 10.0
    assert {entry.pick(lambda: 5.0).port for _ in range(4)} == {2}  # type: ignore[union-attr]
    assert {entry.pick(lambda: 11.0).port for _ in range(4)} == {1, 2}  # type: ignore[union-attr]
    entry.active[1].ejected_until = 10.0
    assert entry.pick(lambda: 5.0) is not None  # all ejected: better to try than to 502
    assert entry.pick(lambda: 5.0, exclude=entry.active[0]) is entry.active[1]


def test_holds() -> None:
    snap = _snap(
        {"app": "p", "domain": "p.com", "paused": True, "backends": [_be(1)]},
        {"app": "e", "domain": "e.com", "hold_when_empty": True},
        {"app": "n", "domain": "n.com"},
    )
    holds = {e.route.app: e.holds for e in compile_table(snap, BackendRegistry()).entries}
    assert holds == {"p": True, "e": True, "n": False}


def test_backend_state_survives_swaps_and_draining_is_detected() -> None:
    reg = BackendRegistry()
    old = compile_table(_snap({"app": "w", "domain": "a.com", "backends": [_be(1, dep="x")]}),
                        reg)
    old.entries[0].active[0].requests = 5
    new = compile_table(
        _snap({"app": "w", "domain": "a.com", "drain_grace": 7,
               "backends": [_be(1, "draining", "x"), _be(2, dep="y")]}),
        reg,
    )
    assert new.entries[0].backends[0].requests == 5
    assert [(b.port, g) for b, g in draining_changes(old, new)] == [(1, 30.0)]


def test_api_and_acme_backends() -> None:
    snap = _snap(
        api={"domain": "API.example.com.", "backend": {"address": "127.0.0.1", "port": 9922}},
        acme_challenge_backend={"address": "127.0.0.1", "port": 9922},
    )
    table = compile_table(snap, BackendRegistry())
    assert table.api_domain == b"api.example.com"
    assert table.api_backend is table.acme_backend  # same endpoint, one state
    # The proxy routes a Host naming the API domain (any case, a port) to haloyd.
    loop = asyncio.new_event_loop()
    try:
        service = ProxyService(loop)
        service.put_snapshot(snap)
        ex = Exchange()
        ex.url = b"/v1/version"
        service.route(ex, b"api.example.com:443", False, b"https")
    finally:
        loop.close()
    assert ex.kind == API
