"""Deployment history on a real SQLite file."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from haloy.errors import StoreError
from haloy.store import INTERRUPTED, DeploymentStore, Status
from haloy.store.migrations import LATEST, migrate


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[DeploymentStore]:
    s = await DeploymentStore.open(tmp_path / "db" / "haloy.db")
    yield s
    await s.close()


async def test_file_is_wal_and_migrated(store: DeploymentStore, tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "db" / "haloy.db")
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == LATEST
    finally:
        conn.close()


async def test_record_update_get(store: DeploymentStore) -> None:
    dep = await store.record("web", "web:latest", {"env": [{"name": "DB", "secret": "db_pw"}]})
    assert dep.status is Status.PENDING and len(dep.id) == 26
    await store.update(dep.id, Status.RUNNING)
    done = await store.update(dep.id, Status.SUCCEEDED, image_digest="sha256:" + "a" * 64)
    assert done.status is Status.SUCCEEDED
    assert done.image_digest == "sha256:" + "a" * 64
    got = await store.get(dep.id)
    assert got == done
    assert got.config == {"env": [{"name": "DB", "secret": "db_pw"}]}
    assert await store.get("01ARZ3NDEKTSV4RRFFQ69G5FAV") is None


async def test_illegal_move_is_rejected_and_nothing_changes(store: DeploymentStore) -> None:
    dep = await store.record("web", "web:1", {})
    with pytest.raises(StoreError):
        await store.update(dep.id, Status.SUCCEEDED)
    got = await store.get(dep.id)
    assert got is not None and got.status is Status.PENDING


async def test_update_unknown_id(store: DeploymentStore) -> None:
    with pytest.raises(StoreError, match="no deployment"):
        await store.update("nope", Status.RUNNING)


async def test_history_newest_first_per_app(store: DeploymentStore) -> None:
    ids = [(await store.record("web", f"web:{i}", {})).id for i in range(5)]
    other = await store.record("api", "api:1", {})
    history = await store.history("web")
    assert [d.id for d in history] == ids[::-1]
    assert [d.id for d in await store.history("web", limit=2)] == ids[:2:-1][:2]
    assert [d.id for d in await store.history("api")] == [other.id]
    assert await store.apps() == ["api", "web"]


async def test_rollback_is_recorded(store: DeploymentStore) -> None:
    first = await store.record("web", "web:1", {})
    again = await store.record("web", "web:1", {}, rolled_back_from=first.id)
    assert (await store.history("web"))[0].rolled_back_from == first.id
    assert again.rolled_back_from == first.id


async def _succeeded(store: DeploymentStore, app: str) -> str:
    dep = await store.record(app, f"{app}:x", {})
    await store.update(dep.id, Status.RUNNING)
    await store.update(dep.id, Status.SUCCEEDED)
    return dep.id


async def _failed(store: DeploymentStore, app: str) -> str:
    dep = await store.record(app, f"{app}:x", {})
    await store.update(dep.id, Status.FAILED, reason="health check failed")
    return dep.id


async def test_prune_keeps_count_and_returns_ids(store: DeploymentStore) -> None:
    ids = [await _succeeded(store, "web") for _ in range(5)]
    other = await _succeeded(store, "api")
    pruned = await store.prune("web", keep=2)
    assert pruned == [ids[2], ids[1], ids[0]]
    assert [d.id for d in await store.history("web")] == [ids[4], ids[3]]
    assert [d.id for d in await store.history("api")] == [other]
    assert await store.prune("web", keep=2) == []


async def test_prune_spares_current_and_in_flight(store: DeploymentStore) -> None:
    running = await store.record("web", "web:r", {})
    await store.update(running.id, Status.RUNNING)
    current = await _succeeded(store, "web")
    failed = [await _failed(store, "web") for _ in range(3)]
    pruned = await store.prune("web", keep=1)
    assert pruned == [failed[1], failed[0]]
    kept = {d.id for d in await store.history("web")}
    assert kept == {running.id, current, failed[2]}


async def test_prune_rejects_zero(store: DeploymentStore) -> None:
    with pytest.raises(StoreError):
        await store.prune("web", keep=0)


async def test_mark_interrupted_on_restart(tmp_path: Path) -> None:
    path = tmp_path / "haloy.db"
    store = await DeploymentStore.open(path)
    pending = await store.record("web", "web:1", {})
    running = await store.record("api", "api:1", {})
    await store.update(running.id, Status.RUNNING)
    done = await _succeeded(store, "web")
    await store.close()

    store = await DeploymentStore.open(path)
    try:
        assert await store.mark_interrupted() == [pending.id, running.id]
        for dep_id in (pending.id, running.id):
            dep = await store.get(dep_id)
            assert dep is not None
            assert (dep.status, dep.reason) == (Status.FAILED, INTERRUPTED)
        unchanged = await store.get(done)
        assert unchanged is not None and unchanged.status is Status.SUCCEEDED
        assert await store.mark_interrupted() == []
    finally:
        await store.close()


async def test_migrates_from_older_user_version(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate(conn, target=1) == 1
    conn.execute(
        "INSERT INTO deployments (id, app, status, image_ref, created_at, updated_at)"
        " VALUES ('01J0000000000000000000000A', 'web', 'succeeded', 'web:1',"
        " '2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00')"
    )
    conn.close()

    store = await DeploymentStore.open(path)
    try:
        [dep] = await store.history("web")
        assert dep.id == "01J0000000000000000000000A"
        assert dep.rolled_back_from is None and dep.config == {}
    finally:
        await store.close()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == LATEST
    finally:
        conn.close()


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {LATEST + 1}")
    conn.close()
    with pytest.raises(StoreError) as err:
        await DeploymentStore.open(path)
    assert err.value.hint and "upgrade" in err.value.hint


async def test_unwritable_location_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a dir")
    with pytest.raises(StoreError):
        await DeploymentStore.open(blocker / "haloy.db")


async def test_concurrent_writers_are_serialized(store: DeploymentStore) -> None:
    deps = await asyncio.gather(*(store.record("web", f"web:{i}", {}) for i in range(50)))
    await asyncio.gather(*(store.update(d.id, Status.RUNNING) for d in deps))
    history = await store.history("web")
    assert len(history) == 50 and {d.status for d in history} == {Status.RUNNING}


async def test_other_connections_read_while_open(store: DeploymentStore, tmp_path: Path) -> None:
    dep = await store.record("web", "web:1", {})
    conn = sqlite3.connect(tmp_path / "db" / "haloy.db")
    try:
        # WAL: an outside reader (e.g. sqlite3 on the command line) sees committed rows.
        assert conn.execute("SELECT id FROM deployments").fetchall() == [(dep.id,)]
    finally:
        conn.close()
