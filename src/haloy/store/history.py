"""Deployment history: record, move through statuses, list per app, prune, recover.

The database holds history, never the truth about what runs (that lives in Docker labels).
Stored config holds secret *references* only; callers resolve secrets, never store them.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ulid import ULID

from haloy.errors import StoreError
from haloy.store.db import Database
from haloy.store.states import IN_FLIGHT, Status, check_transition

INTERRUPTED = "interrupted"
_COLUMNS = (
    "id, app, status, image_ref, image_digest, config_json, reason, created_at, updated_at,"
    " rolled_back_from"
)


@dataclass(frozen=True)
class Deployment:
    """One row of deployment history."""

    id: str
    app: str
    status: Status
    image_ref: str
    image_digest: str | None
    config: dict[str, Any] = field(hash=False)
    reason: str | None
    created_at: datetime
    updated_at: datetime
    rolled_back_from: str | None


def _row(r: sqlite3.Row | tuple[Any, ...]) -> Deployment:
    return Deployment(
        id=r[0],
        app=r[1],
        status=Status(r[2]),
        image_ref=r[3],
        image_digest=r[4],
        config=json.loads(r[5]),
        reason=r[6],
        created_at=datetime.fromisoformat(r[7]),
        updated_at=datetime.fromisoformat(r[8]),
        rolled_back_from=r[9],
    )


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _fetch(conn: sqlite3.Connection, deployment_id: str) -> Deployment | None:
    r = conn.execute(f"SELECT {_COLUMNS} FROM deployments WHERE id = ?", (deployment_id,))
    row = r.fetchone()
    return _row(row) if row else None


class DeploymentStore:
    """Async queries over the deployment history."""

    def __init__(self, db: Database, clock: Callable[[], datetime] = _utcnow) -> None:
        self._db = db
        self._clock = clock

    @classmethod
    async def open(cls, path: Path, clock: Callable[[], datetime] = _utcnow) -> DeploymentStore:
        """Open the history database at `path` (e.g. `Paths.db_file`)."""
        return cls(await Database.open(path), clock)

    async def close(self) -> None:
        """Close the database."""
        await self._db.close()

    async def record(
        self,
        app: str,
        image_ref: str,
        config: Mapping[str, Any],
        *,
        image_digest: str | None = None,
        rolled_back_from: str | None = None,
    ) -> Deployment:
        """Record a new pending deployment with a fresh ULID."""
        now = self._clock()
        dep = Deployment(
            id=str(ULID.from_datetime(now)),
            app=app,
            status=Status.PENDING,
            image_ref=image_ref,
            image_digest=image_digest,
            config=dict(config),
            reason=None,
            created_at=now,
            updated_at=now,
            rolled_back_from=rolled_back_from,
        )
        config_json = json.dumps(dep.config, sort_keys=True)

        def insert(conn: sqlite3.Connection) -> None:
            conn.execute(
                f"INSERT INTO deployments ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    dep.id,
                    app,
                    dep.status.value,
                    image_ref,
                    image_digest,
                    config_json,
                    None,
                    now.isoformat(),
                    now.isoformat(),
                    rolled_back_from,
                ),
            )

        await self._db.run(insert)
        return dep

    async def update(
        self,
        deployment_id: str,
        status: Status,
        *,
        reason: str | None = None,
        image_digest: str | None = None,
    ) -> Deployment:
        """Move a deployment to `status`; illegal moves raise StoreError."""
        now = self._clock().isoformat()

        def change(conn: sqlite3.Connection) -> Deployment:
            with _transaction(conn):
                current = _fetch(conn, deployment_id)
                if current is None:
                    raise _unknown(deployment_id)
                check_transition(current.status, status)
                conn.execute(
                    "UPDATE deployments SET status = ?, reason = COALESCE(?, reason),"
                    " image_digest = COALESCE(?, image_digest), updated_at = ? WHERE id = ?",
                    (status.value, reason, image_digest, now, deployment_id),
                )
                updated = _fetch(conn, deployment_id)
            assert updated is not None  # the row was read in this very transaction
            return updated

        return await self._db.run(change)

    async def get(self, deployment_id: str) -> Deployment | None:
        """The deployment with this id, or None."""
        return await self._db.run(lambda conn: _fetch(conn, deployment_id))

    async def history(self, app: str, limit: int | None = None) -> list[Deployment]:
        """History of `app`, newest first."""

        def query(conn: sqlite3.Connection) -> list[Deployment]:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM deployments WHERE app = ? ORDER BY rowid DESC LIMIT ?",
                (app, -1 if limit is None else limit),
            )
            return [_row(r) for r in rows]

        return await self._db.run(query)

    async def apps(self) -> list[str]:
        """Every app with history, sorted."""

        def query(conn: sqlite3.Connection) -> list[str]:
            return [r[0] for r in conn.execute("SELECT DISTINCT app FROM deployments ORDER BY 1")]

        return await self._db.run(query)

    async def prune(self, app: str, keep: int) -> list[str]:
        """Keep the newest `keep` deployments of `app`; return the ids deleted.

        In-flight deployments and the newest succeeded one (what runs now) are never pruned.
        """
        if keep < 1:
            raise StoreError(
                f"history.count must be at least 1, got {keep}",
                hint="set history.count in haloy.yaml to 1 or more",
            )

        def delete(conn: sqlite3.Connection) -> list[str]:
            with _transaction(conn):
                rows = conn.execute(
                    "SELECT id, status FROM deployments WHERE app = ? ORDER BY rowid DESC", (app,)
                ).fetchall()
                current = next((i for i, s in rows if s == Status.SUCCEEDED.value), None)
                doomed = [i for i, s in rows[keep:] if i != current and Status(s) not in IN_FLIGHT]
                conn.executemany("DELETE FROM deployments WHERE id = ?", [(i,) for i in doomed])
            return doomed

        return await self._db.run(delete)

    async def mark_interrupted(self) -> list[str]:
        """At start-up: every pending/running deployment becomes failed ("interrupted")."""
        now = self._clock().isoformat()
        in_flight = tuple(s.value for s in IN_FLIGHT)

        def mark(conn: sqlite3.Connection) -> list[str]:
            with _transaction(conn):
                ids = [
                    r[0]
                    for r in conn.execute(
                        "SELECT id FROM deployments WHERE status IN (?, ?) ORDER BY rowid",
                        in_flight,
                    )
                ]
                conn.executemany(
                    "UPDATE deployments SET status = ?, reason = ?, updated_at = ? WHERE id = ?",
                    [(Status.FAILED.value, INTERRUPTED, now, i) for i in ids],
                )
            return ids

        return await self._db.run(mark)


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE .. COMMIT, rolled back on any exception."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _unknown(deployment_id: str) -> StoreError:
    return StoreError(
        f"no deployment with id {deployment_id}",
        hint="list the app's deployments to see the ids that are kept",
    )
