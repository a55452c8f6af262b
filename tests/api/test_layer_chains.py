"""Layer chains (pure): chain IDs as docker's layer store names them, which layers an engine
covers, and the assembled tar leaving those out."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from haloy.daemon.api.image_tar import image_tar, parse_spec
from haloy.daemon.api.layer_chains import chain_ids, covered_now, engine_chains, engine_covered
from haloy.daemon.api.problems import ApiProblem

A, B, C, X = ("sha256:" + ch * 64 for ch in "abcx")


def test_chain_ids_match_dockers_layer_store() -> None:
    # RootFS.Layers of a two-layer image on dockerd 20.10, and the chain ID its
    # /var/lib/docker/image/overlay2/layerdb/sha256/<id> directory had for layer 2.
    layers = ["sha256:7204c00ad7382515a58cbfdf8069d4e714c7802a861b3f90d4195ea03c3d4811",
              "sha256:91dacc8e27d408209c70702d42bdc85beb4535dea696b8aa2b2ce858b044aa7f"]
    assert chain_ids(layers) == [
        layers[0], "sha256:8f12d95a1d5831379136e6f34d87e242505080876f03b063b6d588b19f779881"]
    assert chain_ids([]) == []


@pytest.mark.parametrize(("engine_images", "wanted", "covered"), [
    ([], [A, B], set()),
    ([[A]], [A, B], {A}),                       # the base image: its layer, not the new one
    ([[A, B, C]], [A, B], {A, B}),              # a prefix of a longer image
    ([[A, B]], [A, B, C], {A, B}),
    ([[A, X, C]], [A, B, C], {A}),              # middle layer differs: C is another chain
    ([[B]], [A, B], set()),                     # B exists, but not after A
    ([[A, B]], [B, A], set()),                  # order matters
    ([[A], [A, B]], [A, B, A], {B}),            # A repeats: its second place is not covered
    ([[A, B, A]], [A, B, A], {A, B}),
    ([[C], [A, B]], [A, B], {A, B}),
])
def test_engine_covered(
    engine_images: list[list[str]], wanted: list[str], covered: set[str]
) -> None:
    assert engine_covered(wanted, engine_chains(engine_images)) == covered


class BrokenEngine:
    async def chains(self) -> frozenset[str]:
        raise ApiProblem(503, "engine down", code="engine_unavailable")


async def test_check_degrades_to_the_store_when_the_engine_cannot_say() -> None:
    assert await covered_now(BrokenEngine(), [A]) == frozenset()
    assert await covered_now(None, [A]) == frozenset()


def test_tar_leaves_out_layers_without_a_file(tmp_path: Path) -> None:
    (tmp_path / "b").write_bytes(b"layer b")
    config = json.dumps({"rootfs": {"type": "layers", "diff_ids": [A, B, A]}})
    spec = parse_spec("app:v1", config)
    data = b"".join(image_tar(spec, {B: tmp_path / "b"}))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = tar.getnames()
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert names == [spec.config_name, f"{B[7:]}/layer.tar", "manifest.json"]
    # docker load needs one manifest entry per diff_id, file or not.
    assert manifest[0]["Layers"] == [f"{d[7:]}/layer.tar" for d in (A, B, A)]
