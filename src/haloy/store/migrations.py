"""Schema migrations, keyed by SQLite's `PRAGMA user_version`.

Migration N (1-based) moves a database from user_version N-1 to N. Append new steps; never
edit a shipped one, because databases in the field already ran it.
"""

from __future__ import annotations

import sqlite3

from haloy.errors import StoreError

MIGRATIONS: tuple[str, ...] = (
    # 1: deployment history.
    """
    CREATE TABLE deployments (
        id            TEXT PRIMARY KEY,
        app           TEXT NOT NULL,
        status        TEXT NOT NULL,
        image_ref     TEXT NOT NULL,
        image_digest  TEXT,
        config_json   TEXT NOT NULL DEFAULT '{}',
        reason        TEXT,
        created_at    TEXT NOT NULL,
        updated_at    TEXT NOT NULL
    );
    """,
    # 2: rollbacks point at the deployment they restore; history is read per app, newest first
    # (index entries sort by (app, rowid), and rowid follows insertion order).
    """
    ALTER TABLE deployments ADD COLUMN rolled_back_from TEXT;
    CREATE INDEX deployments_app ON deployments (app);
    """,
)

LATEST = len(MIGRATIONS)


def user_version(conn: sqlite3.Connection) -> int:
    """The schema version recorded in the database file."""
    row = conn.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def migrate(conn: sqlite3.Connection, target: int = LATEST) -> int:
    """Apply every missing migration up to `target` and return the version reached."""
    current = user_version(conn)
    if current > LATEST:
        raise StoreError(
            f"the history database has schema version {current}, newer than this haloyd "
            f"knows ({LATEST})",
            hint="upgrade haloyd, or move the database aside to start a fresh history",
        )
    for version in range(current + 1, target + 1):
        # executescript commits first; BEGIN..COMMIT inside keeps each step all-or-nothing.
        script = MIGRATIONS[version - 1]
        try:
            conn.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {version};\nCOMMIT;")
        except sqlite3.Error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    return max(current, target)
