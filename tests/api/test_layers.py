"""Layer check and upload on a real server and a real layers directory."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from haloy.daemon.api import ApiLimits
from tests.api.conftest import TOKEN, RunningApi, StartApi
from tests.fixtures.polling import await_until


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def stored_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


async def test_upload_then_check(api: RunningApi) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)  # several flushes of the write buffer
    digest = digest_of(data)
    other = digest_of(b"other")
    async with api.client() as c:
        before = await c.post("/v1/images/layers/check", json={"digests": [digest, other]})
        put = await c.put(f"/v1/images/layers/{digest}", content=data)
        again = await c.put(f"/v1/images/layers/{digest}", content=data)
        after = await c.post("/v1/images/layers/check", json={"digests": [digest, other]})
    assert before.json() == {"missing": [digest, other], "present": []}
    assert put.status_code == 201
    assert put.json() == {"digest": digest, "size": len(data), "stored": True}
    assert again.status_code == 200 and again.json()["stored"] is False
    assert after.json() == {"missing": [other], "present": [digest]}
    path = api.layers.root / "sha256" / digest.removeprefix("sha256:")
    assert path.read_bytes() == data
    assert stored_files(api.layers.root) == [path]


async def test_streamed_upload_without_length(api: RunningApi) -> None:
    parts = [os.urandom(70_000) for _ in range(5)]
    digest = digest_of(b"".join(parts))

    async def body() -> AsyncIterator[bytes]:
        for part in parts:
            yield part

    async with api.client() as c:
        put = await c.put(f"/v1/images/layers/{digest}", content=body())
    assert put.status_code == 201 and put.json()["size"] == 350_000


async def test_wrong_digest_is_400_and_nothing_is_kept(api: RunningApi) -> None:
    data = b"the real content"
    claimed = digest_of(b"something else")
    async with api.client() as c:
        r = await c.put(f"/v1/images/layers/{claimed}", content=data)
        check = await c.post("/v1/images/layers/check", json={"digests": [claimed]})
    assert r.status_code == 400
    assert r.json()["error"] == "digest_mismatch" and r.json()["hint"]
    assert stored_files(api.layers.root) == []
    assert check.json()["missing"] == [claimed]


@pytest.mark.parametrize(
    "digest",
    [
        "sha256:..%2f..%2f..%2fetc%2fpasswd",
        "..%2F..%2Fetc%2Fpasswd",
        "sha256%3a..%2f" + "a" * 61,
        "sha256:" + "A" * 64,
        "sha256:" + "a" * 63,
        "sha256:" + "a" * 64 + "%2f..",
        "md5:abc",
    ],
)
async def test_digest_traversal_is_400(api: RunningApi, digest: str) -> None:
    async with api.client() as c:
        r = await c.put(f"/v1/images/layers/{digest}", content=b"x")
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid_digest"
    assert stored_files(api.layers.root) == []


async def test_check_refuses_invalid_digests(api: RunningApi) -> None:
    async with api.client() as c:
        r = await c.post("/v1/images/layers/check", json={"digests": ["sha256:../../x"]})
    assert r.status_code == 400 and r.json()["error"] == "invalid_digest"


async def test_layer_over_the_cap_is_413(start_api: StartApi) -> None:
    api = await start_api(limits=ApiLimits(max_layer_bytes=1000))
    data = b"z" * 1001

    async def body() -> AsyncIterator[bytes]:
        yield data[:600]
        yield data[600:]

    async with api.client() as c:
        declared = await c.put(f"/v1/images/layers/{digest_of(data)}", content=data)
        streamed = await c.put(f"/v1/images/layers/{digest_of(data)}", content=body())
    assert declared.status_code == 413
    assert streamed.status_code == 413
    assert stored_files(api.layers.root) == []


async def test_layers_may_exceed_the_json_cap(start_api: StartApi) -> None:
    api = await start_api(limits=ApiLimits(max_json_bytes=100))
    data = os.urandom(5000)
    async with api.client() as c:
        r = await c.put(f"/v1/images/layers/{digest_of(data)}", content=data)
    assert r.status_code == 201


async def test_disk_space_preflight_is_507(start_api: StartApi) -> None:
    # Ask to keep more spare space than any test machine has: the preflight must refuse.
    api = await start_api(min_free_bytes=2**62)
    data = b"layer"
    async with api.client() as c:
        r = await c.put(f"/v1/images/layers/{digest_of(data)}", content=data)
    assert r.status_code == 507
    assert r.json()["error"] == "insufficient_storage" and "free space" in r.json()["hint"]
    assert stored_files(api.layers.root) == []


async def test_aborted_upload_leaves_nothing(api: RunningApi) -> None:
    data = os.urandom(2 * 1024 * 1024)
    host, port = api.url.removeprefix("http://").split(":")
    _reader, writer = await asyncio.open_connection(host, int(port))
    head = (
        f"PUT /v1/images/layers/{digest_of(data)} HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {TOKEN}\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    writer.write(head.encode() + data[: len(data) // 2])
    await writer.drain()
    tmp = api.layers.root / "tmp"
    await await_until("the upload to start", lambda: bool(stored_files(tmp)), timeout=10,
                      interval=0.01)
    writer.close()
    await writer.wait_closed()
    await await_until("the partial layer to be removed",
                      lambda: not stored_files(api.layers.root), timeout=10, interval=0.01)
