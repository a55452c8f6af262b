"""The SQLite connection: WAL mode, migrated on open, used from one worker thread.

sqlite3 blocks, so every call runs on a single-thread executor; one thread also means one
connection and no locking between our own writers. WAL lets readers (e.g. `sqlite3` on the
command line) look at history while haloyd writes.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from haloy.errors import StoreError
from haloy.store.migrations import migrate

T = TypeVar("T")
A = TypeVar("A")

# Seconds a writer waits for another process's lock before giving up (sqlite3's default is 5).
BUSY_TIMEOUT_S = 5.0


def _connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    try:
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(
                f"could not switch {path} to WAL mode (got {mode})",
                hint="keep the database on a local filesystem that supports shared memory",
            )
        # NORMAL is durable across application crashes in WAL mode, and much cheaper than FULL.
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        migrate(conn)
    except BaseException:
        conn.close()
        raise
    return conn


class Database:
    """One SQLite connection owned by one worker thread."""

    def __init__(self, path: Path, executor: ThreadPoolExecutor, conn: sqlite3.Connection) -> None:
        self.path = path
        self._executor = executor
        self._conn = conn

    @classmethod
    async def open(cls, path: Path) -> Database:
        """Open (creating and migrating if needed) the database at `path`."""
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="haloy-store")
        loop = asyncio.get_running_loop()
        try:
            conn = await loop.run_in_executor(executor, _translate, _connect, path)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(path, executor, conn)

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(conn)` on the store's thread; sqlite3 errors become StoreError."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, _translate, fn, self._conn)

    async def close(self) -> None:
        """Close the connection and stop the worker thread."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._conn.close)
        self._executor.shutdown(wait=True)


def _translate(fn: Callable[[A], T], arg: A) -> T:
    try:
        return fn(arg)
    except (sqlite3.Error, OSError) as exc:
        raise StoreError(
            f"the history database failed: {exc}",
            hint="check that the data dir's db/ is writable and not full",
        ) from exc
