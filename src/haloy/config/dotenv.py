"""Dotenv files: parse `KEY=VALUE` lines (pure) and layer the files haloy reads.

Layers, lowest precedence first (a later layer wins):
  <user config dir>/.env, <config dir>/.env, <config dir>/.env.<target>,
  the process environment,
  <user config dir>/.env.local, <config dir>/.env.local.
`.env.local` overrides the process environment (as Haloy's godotenv.Overload does) so a
developer's local values win over a stale exported variable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from haloy.errors import ConfigError

_LINE = re.compile(r"(?:export\s+)?([A-Za-z_][A-Za-z0-9_.]*)\s*=\s*(.*)")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}


def _unquote(raw: str, path: Path, line: int) -> str:
    if raw[:1] in ("'", '"'):
        quote = raw[0]
        end = raw.find(quote, 1)
        while quote == '"' and end > 0 and raw[end - 1] == "\\":
            end = raw.find(quote, end + 1)
        if end < 0:
            raise ConfigError(
                f"{path}:{line}: unterminated {quote} quote",
                hint="close the quote on the same line",
                problems=(f"{path}:{line}: syntax: unterminated quote",),
            )
        body = raw[1:end]
        if quote == "'":
            return body
        return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m[1], "\\" + m[1]), body)
    return re.split(r"\s+#", raw, maxsplit=1)[0].strip()


def parse_dotenv(text: str, path: Path) -> dict[str, str]:
    """Variables of one dotenv file; a malformed line is a ConfigError naming file:line."""
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _LINE.fullmatch(stripped)
        if match is None:
            raise ConfigError(
                f"{path}:{number}: not a KEY=VALUE line",
                hint="dotenv lines look like NAME=value; comments start with #",
                problems=(f"{path}:{number}: syntax: expected KEY=VALUE, got {stripped!r}",),
            )
        values[match[1]] = _unquote(match[2].strip(), path, number)
    return values


def read_dotenv(path: Path) -> dict[str, str]:
    """A dotenv file's variables, or nothing if it does not exist."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    return parse_dotenv(text, path)


def dotenv_files(config_dir: Path, user_dir: Path | None, target: str | None) -> list[Path]:
    """The files below the process environment, lowest precedence first."""
    files = [user_dir / ".env"] if user_dir else []
    files.append(config_dir / ".env")
    if target:
        files.append(config_dir / f".env.{target}")
    return files


def local_files(config_dir: Path, user_dir: Path | None) -> list[Path]:
    """The `.env.local` files above the process environment, lowest precedence first."""
    files = [user_dir / ".env.local"] if user_dir else []
    files.append(config_dir / ".env.local")
    return files


def layered_environment(
    environ: Mapping[str, str], config_dir: Path, user_dir: Path | None, target: str | None
) -> dict[str, str]:
    """The variables `from: {env}` sees for one target: dotenv layers around `environ`."""
    merged: dict[str, str] = {}
    for path in dotenv_files(config_dir, user_dir, target):
        merged.update(read_dotenv(path))
    merged.update(environ)
    for path in local_files(config_dir, user_dir):
        merged.update(read_dotenv(path))
    return merged
