"""Private dotenv files (`KEY=value` lines) written atomically with mode 0600.

Both haloyd's `<config>/.env` (the API token) and the client's token file use this format.
Writes go to a temp file in the same directory, are fsynced, then `os.replace`d, so a crash
never leaves a half-written secret, and the file is never world-readable, not even briefly.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from haloy.errors import ConfigError, HaloyError

PRIVATE_FILE_MODE = 0o600


def write_private_file(path: Path, text: str, mode: int = PRIVATE_FILE_MODE) -> None:
    """Atomically replace `path` with `text`, created with `mode` from the first byte."""
    try:
        _replace(path, text, mode)
    except OSError as exc:
        raise HaloyError(
            f"cannot write {path}: {exc.strerror or exc}",
            hint="check the directory exists and is writable by this user (root for /etc/haloy)",
        ) from exc


def _replace(path: Path, text: str, mode: int) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp creates 0600 already; chmod makes other modes (e.g. 0644 yaml) explicit.
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def parse_env(text: str, source: str = ".env") -> dict[str, str]:
    """Parse `KEY=value` lines; blank lines and `#` comments are ignored, quotes stripped."""
    values: dict[str, str] = {}
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(
                f"{source}:{lineno}: expected KEY=value",
                hint="each line of the file must look like NAME=value",
            )
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


def read_env_file(path: Path) -> dict[str, str]:
    """Read a dotenv file; a missing file reads as empty."""
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return {}
    return parse_env(text, str(path))


def update_env_file(path: Path, updates: Mapping[str, str | None]) -> None:
    """Set (or, for None, remove) keys in a dotenv file, keeping other lines; mode 0600."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (FileNotFoundError, NotADirectoryError):
        lines = []
    pending = dict(updates)
    out: list[str] = []
    for line in lines:
        key = line.strip().removeprefix("export ").partition("=")[0].strip()
        if key in pending:
            value = pending.pop(key)
            if value is not None:
                out.append(f"{key}={value}")
            continue
        out.append(line)
    out.extend(f"{k}={v}" for k, v in pending.items() if v is not None)
    write_private_file(path, "".join(f"{line}\n" for line in out))
