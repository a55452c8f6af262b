"""POST /v1/images/assemble and POST /v1/images against a real dockerd (docker load)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from ulid import ULID

from haloy.cli.ship import save_image, saved_config
from haloy.daemon.api.image_tar import ImageSpecError, normalise_ref, parse_spec
from haloy.runtime.docker import DockerRuntime
from haloy.runtime.images import Images
from tests.api.conftest import RunningApi, StartApi
from tests.fixtures.docker import docker_cli


@pytest.fixture
async def loader(docker_available: None) -> AsyncIterator[Images]:
    runtime = DockerRuntime.open()
    yield runtime.images
    await runtime.close()


@pytest.fixture
def fresh_ref() -> Iterator[str]:
    """A unique tag, removed afterwards."""
    ref = f"haloy-asm-{str(ULID()).lower()}:v1"
    yield ref
    docker_cli("rmi", ref, check=False)


async def upload_all(api: RunningApi, root: Path) -> tuple[str, list[str]]:
    layers = await save_image("haloy-test-app:v2", root)
    async with api.client() as c:
        for layer in layers:
            r = await c.put(f"/v1/images/layers/{layer.digest}", content=layer.path.read_bytes())
            assert r.status_code in (200, 201), r.text
    return saved_config(root / "image"), [layer.digest for layer in layers]


def test_refs_and_specs() -> None:
    assert normalise_ref("web") == "web:latest"
    assert normalise_ref("reg.local:5000/team/web") == "reg.local:5000/team/web:latest"
    assert normalise_ref("web:v1") == "web:v1"
    for bad in ("Web:v1", "web:v1\nx", "../web", "web:", ""):
        with pytest.raises(ImageSpecError):
            normalise_ref(bad)
    with pytest.raises(ImageSpecError):
        parse_spec("web:v1", "{}")
    spec = parse_spec("web", json.dumps({"rootfs": {"diff_ids": ["sha256:" + "a" * 64]}}))
    assert spec.ref == "web:latest" and spec.diff_ids == ("sha256:" + "a" * 64,)


async def test_assemble_loads_the_image_docker_saved(
    start_api: StartApi, loader: Images, test_image: str, fresh_ref: str,
    tmp_path: Path,
) -> None:
    api = await start_api(images=loader)
    config, digests = await upload_all(api, tmp_path)
    async with api.client() as c:
        caps = (await c.get("/v1/version")).json()["capabilities"]
        assert {"images.assemble", "images.tar"} <= set(caps)
        r = await c.post("/v1/images/assemble", json={"ref": fresh_ref, "config": config})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["refs"] == [fresh_ref] and body["layers"] == len(set(digests))
    # The image id is the config's sha256: the server rebuilt exactly the image saved here.
    image_id = docker_cli("image", "inspect", "--format", "{{.Id}}", fresh_ref)
    assert image_id == "sha256:" + hashlib.sha256(config.encode()).hexdigest()
    out = docker_cli("run", "--rm", "--network", "none", "--entrypoint", "/bin/busybox",
                     fresh_ref, "cat", "/www/index.html")
    assert "v2" in out


async def test_assemble_names_missing_layers_and_bad_input(
    start_api: StartApi, loader: Images,
) -> None:
    api = await start_api(images=loader)
    missing = "sha256:" + "b" * 64
    config = json.dumps({"rootfs": {"type": "layers", "diff_ids": [missing]}})
    async with api.client() as c:
        r = await c.post("/v1/images/assemble", json={"ref": "x:v1", "config": config})
        assert r.status_code == 409 and r.json()["error"] == "layers_missing"
        assert missing in r.json()["detail"] and "PUT" in r.json()["hint"]
        r = await c.post("/v1/images/assemble", json={"ref": "Bad Ref", "config": config})
        assert r.status_code == 400 and r.json()["error"] == "invalid_image"
        r = await c.post("/v1/images/assemble", json={"ref": "x:v1", "config": "[1]"})
        assert r.status_code == 400
        bad_digest = json.dumps({"rootfs": {"diff_ids": ["sha256:../../etc"]}})
        r = await c.post("/v1/images/assemble", json={"ref": "x:v1", "config": bad_digest})
        assert r.status_code == 400 and r.json()["error"] == "invalid_digest"


async def test_disk_preflight_answers_507(
    start_api: StartApi, loader: Images, test_image: str, tmp_path: Path,
) -> None:
    roomy = await start_api(images=loader)
    config, _ = await upload_all(roomy, tmp_path)
    tight = await start_api(images=loader, min_free_bytes=1 << 60)  # same layers dir
    async with tight.client() as c:
        r = await c.post("/v1/images/assemble", json={"ref": "x:v1", "config": config})
        assert r.status_code == 507, r.text
        assert "free space" in r.json()["hint"]
        r = await c.post("/v1/images", content=b"\0" * 1024)
        assert r.status_code == 507


async def test_whole_tar_is_loaded(
    start_api: StartApi, loader: Images, test_image: str, fresh_ref: str,
    tmp_path: Path,
) -> None:
    api = await start_api(images=loader)
    docker_cli("tag", "haloy-test-app:v1", fresh_ref)
    archive = tmp_path / "img.tar"
    docker_cli("save", "--output", str(archive), fresh_ref)
    docker_cli("rmi", fresh_ref)

    async def chunks() -> AsyncIterator[bytes]:
        with archive.open("rb") as fh:
            while chunk := fh.read(64 * 1024):
                yield chunk

    async with api.client() as c:
        r = await c.post("/v1/images", content=chunks(),
                         headers={"content-type": "application/x-tar"})
        assert r.status_code == 201, r.text
        assert r.json()["refs"] == [fresh_ref]
        assert r.json()["bytes"] == archive.stat().st_size
        docker_cli("image", "inspect", fresh_ref)
        r = await c.post("/v1/images", content=b"this is not a tar" * 100)
        assert r.status_code == 400 and r.json()["error"] == "image_load_failed"
