"""HTTP-01 challenge store and its ASGI handler, served by a real uvicorn on loopback."""

from __future__ import annotations

import threading

import httpx
from starlette.applications import Starlette
from starlette.routing import Mount

from haloy.certs.challenges import ChallengeApp, ChallengeStore, challenge_response
from tests.certs.conftest import ChallengeServer, serve_challenges


def test_challenge_response_table() -> None:
    store = ChallengeStore()
    store.put("tok_en-1", "tok_en-1.thumb")
    cases = {
        "/.well-known/acme-challenge/tok_en-1": (200, b"tok_en-1.thumb"),
        "/.well-known/acme-challenge/missing": (404, b"unknown challenge token\n"),
        "/.well-known/acme-challenge/../etc/passwd": (404, b"not found\n"),
        "/.well-known/acme-challenge/": (404, b"not found\n"),
        "/other": (404, b"not found\n"),
    }
    for path, expected in cases.items():
        assert challenge_response(store, path) == expected, path
    store.remove("tok_en-1")
    assert challenge_response(store, "/.well-known/acme-challenge/tok_en-1")[0] == 404


def test_store_is_thread_safe() -> None:
    store = ChallengeStore()

    def churn(i: int) -> None:
        for j in range(500):
            store.put(f"t{i}-{j}", "k")
            assert store.get(f"t{i}-{j}") == "k"
            store.remove(f"t{i}-{j}")

    threads = [threading.Thread(target=churn, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(store) == 0


async def test_asgi_app_over_real_http(challenge_server: ChallengeServer) -> None:
    store = challenge_server.store
    store.put("abc", "abc.key")
    base = f"http://127.0.0.1:{challenge_server.port}"
    async with httpx.AsyncClient(base_url=base) as client:
        r = await client.get("/.well-known/acme-challenge/abc", headers={"Host": "app.test"})
        assert (r.status_code, r.text) == (200, "abc.key")
        assert (await client.head("/.well-known/acme-challenge/abc")).status_code == 200
        assert (await client.get("/.well-known/acme-challenge/nope")).status_code == 404
        assert (await client.post("/.well-known/acme-challenge/abc")).status_code == 405



async def test_mounted_in_starlette_like_haloyd_does() -> None:
    store = ChallengeStore()
    store.put("tok", "tok.key")
    app = Starlette(routes=[Mount("/.well-known/acme-challenge", app=ChallengeApp(store))])
    async with serve_challenges(store, 0, app) as srv:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{srv.port}") as client:
            r = await client.get("/.well-known/acme-challenge/tok")
            assert (r.status_code, r.text) == (200, "tok.key")
