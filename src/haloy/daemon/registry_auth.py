"""Registry credentials kept on the server: one JSON file, mode 0600, replaced atomically.

`haloy server registry login` stores them once; every later pull of an image from that registry
uses them when the deploy request carries none. Passwords never leave this file: listings show
servers and usernames only.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from haloy.config.paths import Paths
from haloy.errors import HaloyError
from haloy.wire.registries import normalize_server, registry_of

FILE_NAME = "registries.json"


@dataclass(frozen=True)
class RegistryCredentials:
    """A login to one registry."""

    server: str
    username: str
    password: str

    def engine_auth(self) -> dict[str, str]:
        """The `X-Registry-Auth` body the Docker Engine API takes."""
        return {"username": self.username, "password": self.password,
                "serveraddress": self.server}


def registries_file(paths: Paths) -> Path:
    """Where haloyd keeps registry credentials: in db/, which haloy-proxy's unit hides."""
    return paths.db_dir / FILE_NAME


class RegistryAuthStore:
    """The credentials file; reads are cheap, writes replace the file atomically at 0600."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # The API's handlers and the deployer may write from different tasks/threads.
        self._lock = threading.Lock()

    def all(self) -> dict[str, RegistryCredentials]:
        """Every stored login by server; a missing file is an empty store."""
        try:
            raw = json.loads(self.path.read_text())
            return {server: RegistryCredentials(server, str(e["username"]), str(e["password"]))
                    for server, e in (raw.get("registries") or {}).items()}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise HaloyError(f"cannot read registry credentials {self.path}: {exc!r}",
                             hint="fix or remove the file, then log in again") from exc

    def get(self, server: str) -> RegistryCredentials | None:
        """The login for `server`, if any."""
        return self.all().get(normalize_server(server))

    def auth_for(self, image: str) -> Mapping[str, str] | None:
        """Engine auth for pulling `image`, from the stored login of its registry."""
        creds = self.get(registry_of(image))
        return creds.engine_auth() if creds else None

    def put(self, creds: RegistryCredentials) -> None:
        """Store (or replace) a login."""
        with self._lock:
            entries = self.all()
            entries[creds.server] = creds
            self._write(entries)

    def delete(self, server: str) -> RegistryCredentials | None:
        """Forget the login for `server`; return it (None when there was none)."""
        with self._lock:
            entries = self.all()
            gone = entries.pop(normalize_server(server), None)
            if gone is not None:
                self._write(entries)
            return gone

    def _write(self, entries: Mapping[str, RegistryCredentials]) -> None:
        body = {"registries": {s: {"username": c.username, "password": c.password}
                               for s, c in sorted(entries.items())}}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # mkstemp creates the file 0600, so the secret is never readable by others, not even
        # for a moment; os.replace makes the swap atomic (readers see old or new, never half).
        fd, tmp = tempfile.mkstemp(prefix=".registries-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(body, f, indent=2)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_dir(self.path.parent)


def _fsync_dir(directory: Path) -> None:
    """Make a rename in `directory` durable (the new entry survives a power cut)."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
