"""POST /v1/images/prune: the pure plan, and real removals on the engine.

The engine is shared with other tests, so every image here is built for this test (a LABEL
makes each one a distinct image id) and tagged like the deployer tags: `<app>:<deployment id>`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from haloy.daemon.api.prune import (
    NOT_IN_HISTORY,
    AppHistory,
    app_history,
    confirmed,
    managed_tag,
    plan_prune,
)
from haloy.runtime.images import LocalImage
from haloy.store import Deployment, Status
from haloy.wire.api import PrunedImage
from tests.api.conftest import StartApi, start_api
from tests.fixtures.docker import TEST_IMAGE, TEST_LABEL, docker_cli

__all__ = ["start_api"]  # the fixture this module uses

ULID = "01j8z3k6n4x2t1r0qw5e7y9abc"


@pytest.mark.parametrize(("tag", "parsed"), [
    (f"web:{ULID}", ("web", ULID)),
    ("web:v1", None),
    (f"ghcr.io/me/web:{ULID}", None),  # a registry ref, not a deployer tag
    (f"Web:{ULID}", None),
    ("<none>:<none>", None),
])
def test_managed_tag(tag: str, parsed: tuple[str, str] | None) -> None:
    assert managed_tag(tag) == parsed


def test_plan_keeps_used_kept_and_foreign_images() -> None:
    ids = [f"01j8z3k6n4x2t1r0qw5e7y9ab{c}" for c in "0123"]
    apps = {"web": AppHistory(known=frozenset(ids[:3]), kept=frozenset(ids[2:3]))}
    images = [
        LocalImage("sha256:a", (f"web:{ids[0]}",), 100),            # old: goes, freed
        LocalImage("sha256:b", (f"web:{ids[1]}", "web:v1"), 200),   # old, but another tag stays
        LocalImage("sha256:c", (f"web:{ids[2]}",), 300),            # kept
        LocalImage("sha256:d", (f"web:{ids[3]}",), 400),            # not in history
        LocalImage("sha256:e", (f"web:{ULID}",), 500),              # in use
        LocalImage("sha256:f", (f"other:{ULID}",), 600),            # app without history here
    ]
    doomed, freed = plan_prune(images, frozenset({"sha256:e"}), apps, keep=2)
    assert [(p.ref, p.reason) for p in doomed] == [
        (f"web:{ids[0]}", "older than the newest 2 deployments"),
        (f"web:{ids[1]}", "older than the newest 2 deployments"),
        (f"web:{ids[3]}", NOT_IN_HISTORY),
    ]
    assert freed == 100 + 400


def deployment(dep_id: str, status: Status, rolled_back_from: str | None = None) -> Deployment:
    now = datetime.now(UTC)
    return Deployment(dep_id.upper(), "web", status, "img", None, {}, None, now, now,
                      rolled_back_from)


def test_history_keeps_in_flight_rollbacks_target_and_current() -> None:
    ids = [f"01j8z3k6n4x2t1r0qw5e7y9ab{c}" for c in "01234"]
    history = [  # newest first
        deployment(ids[4], Status.RUNNING, rolled_back_from=ids[0].upper()),
        deployment(ids[3], Status.FAILED),
        deployment(ids[2], Status.SUCCEEDED),
        deployment(ids[1], Status.SUCCEEDED),
        deployment(ids[0], Status.SUCCEEDED),
    ]
    hist = app_history(history, keep=1)
    assert hist.known == frozenset(ids)
    assert hist.kept == frozenset({ids[4], ids[2], ids[0]})  # in flight, current, its target


def test_confirmed_removes_only_what_was_shown_and_is_still_doomed() -> None:
    images = [LocalImage("sha256:a", ("web:a",), 100), LocalImage("sha256:b", ("web:b",), 200)]
    doomed = [PrunedImage(ref=r, id=f"sha256:{r[-1]}", size=0, reason="x")
              for r in ("web:a", "web:b")]
    kept, freed = confirmed(doomed, images, frozenset({"web:b", "web:c"}))
    assert [p.ref for p in kept] == ["web:b"] and freed == 200


@dataclass
class Built:
    app: str
    refs: list[str]


@pytest.fixture
def unique_images(tmp_path: Path, test_image: str) -> Iterator[Built]:
    """A builder of distinct small images for one app name; all removed afterwards."""
    built = Built(f"prune{uuid.uuid4().hex[:8]}", [])
    yield built
    if built.refs:
        docker_cli("rmi", "-f", *built.refs, check=False)


def build(built: Built, tmp_path: Path, tag: str) -> str:
    ref = f"{built.app}:{tag}"
    ctx = tmp_path / f"ctx-{tag}"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {TEST_IMAGE}:v1\nLABEL {TEST_LABEL}.prune={ref}\n")
    docker_cli("build", "-q", "-t", ref, str(ctx))
    built.refs.append(ref)
    return ref


def present(ref: str) -> bool:
    return bool(docker_cli("image", "ls", "-q", ref))


async def test_prune_dry_run_then_keep_one_on_the_engine(
    tmp_path: Path, start_api: StartApi, unique_images: Built, docker_cleanup: str,
) -> None:
    api = await start_api()  # its prune endpoint works on this engine and api.store
    app = unique_images.app
    deps = []
    for _ in range(4):  # four deployments, oldest first, all succeeded
        dep = await api.store.record(app, f"{TEST_IMAGE}:v1", {})
        await api.store.update(dep.id, Status.RUNNING)
        deps.append(await api.store.update(dep.id, Status.SUCCEEDED))
    refs = [build(unique_images, tmp_path, d.id.lower()) for d in deps]
    orphan = build(unique_images, tmp_path, ULID)  # a deployment history no longer has
    # The oldest deployment's image is used by a stopped container: never removed.
    docker_cli("create", "--label", f"{TEST_LABEL}={docker_cleanup}", refs[0])

    async with api.client() as c:
        dry = (await c.post("/v1/images/prune", json={})).json()
        assert dry["dryRun"] is True
        assert [i["ref"] for i in dry["images"]] == [orphan]
        assert dry["images"][0]["reason"] == NOT_IN_HISTORY
        assert dry["bytesFreed"] == dry["images"][0]["size"] > 0
        assert present(orphan)

        plan = (await c.post("/v1/images/prune",
                             json={"dryRun": True, "keep": 1, "app": app})).json()
        assert sorted(i["ref"] for i in plan["images"]) == sorted([refs[1], refs[2], orphan])

        # Confirmed refs: only those (still doomed) go; a kept or unknown ref is ignored.
        some = (await c.post("/v1/images/prune", json={
            "dryRun": False, "keep": 1, "refs": [refs[1], refs[3], f"{app}:{ULID[:-1]}x"]})).json()
        assert [i["ref"] for i in some["images"]] == [refs[1]]
        assert not present(refs[1]) and present(refs[2]) and present(refs[3])

        done = (await c.post("/v1/images/prune", json={"dryRun": False, "keep": 1})).json()
        assert sorted(i["ref"] for i in done["images"]) == sorted([refs[2], orphan])
        assert done["bytesFreed"] > 0
        assert [present(r) for r in refs] == [True, False, False, True]
        assert not present(orphan)

        # An app this haloyd has no history of is never touched, even when named.
        stranger = f"{app}x:{ULID}"
        docker_cli("tag", refs[3], stranger)
        unique_images.refs.append(stranger)
        foreign = (await c.post("/v1/images/prune", json={
            "dryRun": False, "app": f"{app}x"})).json()
        assert foreign["images"] == [] and present(stranger)

        bad = await c.post("/v1/images/prune", json={"app": "../etc"})
        assert bad.status_code == 400
