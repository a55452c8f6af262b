"""Layers the server's Docker engine already has (real dockerd): the check counts their chains,
assembly leaves their files out of docker load, and a chain lost meanwhile is a clear 409."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from ulid import ULID

from haloy.cli.ship import Layer, save_image, saved_config
from haloy.daemon.api.layer_chains import EngineChains
from haloy.runtime.docker import DockerRuntime
from haloy.runtime.images import Images
from tests.api.conftest import RunningApi, StartApi
from tests.fixtures.docker import TEST_IMAGE, docker_cli

pytestmark = pytest.mark.docker

CHECK = "/v1/images/layers/check"


@dataclass
class Pair:
    """Image B built FROM image A; the engine keeps A but no longer B."""

    base: str
    ref: str
    config: str
    layers: list[Layer]

    @property
    def diff_ids(self) -> list[str]:
        return [layer.digest for layer in self.layers]


def build(ref: str, base: str, file: str, text: str, root: Path) -> None:
    """`base` + one layer adding /www/`file` (COPY: no build container, no network)."""
    root.mkdir()
    (root / file).write_text(text)
    (root / "Dockerfile").write_text(f"FROM {base}\nCOPY {file} /www/{file}\n")
    docker_cli("build", "-q", "-t", ref, str(root), timeout=120)


@pytest.fixture
async def pair(test_image: str, tmp_path: Path) -> AsyncIterator[Pair]:
    """A = the test image + a layer of its own (unique per test), B = A + one more layer."""
    name = f"haloy-chain-{str(ULID()).lower()}"
    base, ref = f"{name}-a:v1", f"{name}-b:v1"
    try:
        build(base, f"{TEST_IMAGE}:v1", "base.txt", f"{name}\n", tmp_path / "a")
        build(ref, base, "top.txt", "top\n", tmp_path / "b")
        layers = await save_image(ref, tmp_path / "saved")
        config = saved_config(tmp_path / "saved" / "image")
        docker_cli("rmi", ref)
        yield Pair(base, ref, config, layers)
    finally:
        docker_cli("rmi", ref, base, check=False)


@pytest.fixture
async def engine(docker_available: None) -> AsyncIterator[Images]:
    runtime = DockerRuntime.open()
    yield runtime.images
    await runtime.close()


async def upload(api: RunningApi, layers: list[Layer]) -> None:
    async with api.client() as c:
        for layer in layers:
            r = await c.put(f"/v1/images/layers/{layer.digest}", content=layer.path.read_bytes())
            assert r.status_code == 201, r.text


async def test_check_counts_the_chains_the_engine_has(
    start_api: StartApi, pair: Pair, engine: Images,
) -> None:
    api = await start_api(chains=EngineChains(engine))
    ids = pair.diff_ids
    assert len(ids) == 3  # the test image's layer, A's, B's
    async with api.client() as c:
        assert "images.layers.engine" in (await c.get("/v1/version")).json()["capabilities"]
        # An older client sends no order: only the (empty) layer store counts.
        old = await c.post(CHECK, json={"digests": ids})
        assert old.json() == {"missing": ids, "present": []}
        new = await c.post(CHECK, json={"digests": ids, "diffIds": ids})
        assert new.json() == {"missing": ids[2:], "present": ids[:2]}
        # A's layer after another parent is another chain: not the engine's.
        other = "sha256:" + "e" * 64
        odd = [ids[0], other, ids[1]]
        r = await c.post(CHECK, json={"digests": odd, "diffIds": odd})
        assert r.json() == {"missing": [other, ids[1]], "present": [ids[0]]}
        bad = await c.post(CHECK, json={"digests": [], "diffIds": ["sha256:../x"]})
        assert bad.status_code == 400 and bad.json()["error"] == "invalid_digest"
    # Without an engine to ask (no chains) the order changes nothing.
    plain = await start_api()
    async with plain.client() as c:
        assert "images.layers.engine" not in (await c.get("/v1/version")).json()["capabilities"]
        r = await c.post(CHECK, json={"digests": ids, "diffIds": ids})
        assert r.json() == {"missing": ids, "present": []}


async def test_assemble_takes_the_engines_layers_and_runs(
    start_api: StartApi, pair: Pair, engine: Images,
) -> None:
    api = await start_api(images=engine, chains=EngineChains(engine))
    async with api.client() as c:
        r = await c.post(CHECK, json={"digests": pair.diff_ids, "diffIds": pair.diff_ids})
    missing = [layer for layer in pair.layers if layer.digest in r.json()["missing"]]
    assert missing == pair.layers[2:]
    await upload(api, missing)
    async with api.client() as c:
        r = await c.post("/v1/images/assemble", json={"ref": pair.ref, "config": pair.config})
    assert r.status_code == 201, r.text
    assert r.json()["layers"] == 1  # only B's own layer went into docker load
    image_id = docker_cli("image", "inspect", "--format", "{{.Id}}", pair.ref)
    assert image_id == "sha256:" + hashlib.sha256(pair.config.encode()).hexdigest()
    out = docker_cli("run", "--rm", "--network", "none", "--entrypoint", "/bin/busybox",
                     pair.ref, "cat", "/www/base.txt", "/www/top.txt", "/www/index.html")
    assert out.splitlines() == [pair.base.removesuffix("-a:v1"), "top", "haloy-test-app v1"]


class Frozen:
    """The engine's chains as they were at the check (a removal races the assembly)."""

    def __init__(self, chains: frozenset[str]) -> None:
        self.frozen = chains

    async def chains(self) -> frozenset[str]:
        return self.frozen


async def test_a_chain_the_engine_lost_is_a_409_and_no_image(
    start_api: StartApi, pair: Pair, engine: Images,
) -> None:
    loader = engine
    api = await start_api(images=loader, chains=EngineChains(engine))
    before = await EngineChains(engine).chains()
    await upload(api, pair.layers[2:])
    docker_cli("rmi", pair.base)  # A's own layer leaves the engine after the check
    lost = pair.diff_ids[1]
    # Removed before the assembly looks: refused up front.
    # Removed after it looked (here: it trusts the chains seen at the check): docker load finds
    # no file for the layer and stops before tagging; the answer is the same.
    racing = await start_api(images=loader, chains=Frozen(before))
    for server in (api, racing):
        async with server.client() as c:
            r = await c.post("/v1/images/assemble",
                             json={"ref": pair.ref, "config": pair.config})
        assert r.status_code == 409, r.text
        body = r.json()
        assert body["error"] == "layers_missing" and lost in body["detail"]
        assert pair.diff_ids[0] not in body["detail"]  # still the engine's
        assert "deploy again" in body["hint"]
        assert docker_cli("image", "ls", "-q", pair.ref) == ""
