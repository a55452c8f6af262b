"""`haloyd config get|set`: read and change one dotted key of haloyd.yaml, validated.

`set` validates the whole edited document through `DaemonConfig` before anything is written,
then replaces the file atomically: an invalid value never lands on disk. The edit is made on
the text (one line replaced or inserted) so the comments `haloyd init` wrote survive; if that
edit would not parse to the intended document, the file is re-dumped from the data instead.
"""

from __future__ import annotations

import difflib
import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import BaseModel, ValidationError

from haloy.config.daemon import DaemonConfig, load_daemon_config
from haloy.config.durations import format_duration
from haloy.config.envfile import write_private_file
from haloy.errors import ConfigError


def _unknown_key(key: str, part: str, choices: list[str]) -> ConfigError:
    close = difflib.get_close_matches(part, choices, n=1)
    suggestion = f"did you mean {close[0]!r}? " if close else ""
    return ConfigError(
        f"unknown config key {key!r}",
        hint=f"{suggestion}keys here: {', '.join(sorted(choices))}",
    )


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model class an annotation holds (also inside `Model | None`), else None."""
    for candidate in (annotation, *get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def split_key(key: str) -> list[str]:
    """Split a dotted key, checking each part against the model's fields."""
    parts = key.split(".")
    model: type[BaseModel] | None = DaemonConfig
    for i, part in enumerate(parts):
        if model is None:
            raise ConfigError(f"unknown config key {key!r}: {'.'.join(parts[:i])} has no sub-keys")
        fields = model.model_fields
        if part not in fields:
            raise _unknown_key(key, part, list(fields))
        model = _model_in(fields[part].annotation)
    return parts


def format_value(value: Any) -> str:
    """A value as a user would write it in haloyd.yaml."""
    if isinstance(value, BaseModel):
        dumped = value.model_dump(mode="json")
        return yaml.safe_dump(dumped, sort_keys=False).rstrip("\n")
    if isinstance(value, timedelta):
        return format_duration(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _lookup(config: DaemonConfig, parts: list[str]) -> Any:
    value: Any = config
    for part in parts:
        value = getattr(value, part)
    return value


def _load(config_file: Path) -> DaemonConfig:
    if not config_file.is_file():
        raise ConfigError(
            f"{config_file}: no such file",
            hint="run `haloyd init` first, or point --config-dir / HALOY_CONFIG_DIR at it",
        )
    return load_daemon_config(config_file)


def get_value(config_file: Path, key: str) -> str:
    """The effective value of a dotted key (defaults included), formatted for display."""
    parts = split_key(key)
    return format_value(_lookup(_load(config_file), parts))


def _candidates(raw: str) -> list[Any]:
    """The typed reading of a CLI value (YAML scalar rules) first, then the plain string."""
    try:
        typed = yaml.safe_load(raw)
    except yaml.YAMLError:
        return [raw]
    return [typed] if typed == raw else [typed, raw]


def _with_value(document: dict[str, Any], parts: list[str], value: Any) -> dict[str, Any]:
    """A deep-enough copy of `document` with the dotted path set to `value`."""
    result = dict(document)
    node = result
    for part in parts[:-1]:
        child = node.get(part)
        child = dict(child) if isinstance(child, dict) else {}
        node[part] = child
        node = child
    node[parts[-1]] = value
    return result


def edit_text(text: str, parts: list[str], value: Any) -> str:
    """Replace (or insert) `section:\\n  key: value` in the text, keeping every comment."""
    rendered = json.dumps(value)  # JSON scalars are valid YAML and quote what needs it
    lines = text.splitlines()
    if len(parts) != 2:
        return text  # haloyd.yaml is two levels deep; anything else falls back to a dump
    section, key = parts
    header = next((i for i, ln in enumerate(lines) if re.match(rf"{section}:\s*(#.*)?$", ln)), -1)
    if header < 0:
        return "\n".join([*lines, f"{section}:", f"  {key}: {rendered}"]) + "\n"
    end = next(
        (i for i in range(header + 1, len(lines)) if lines[i] and not lines[i][0].isspace()),
        len(lines),
    )
    pattern = re.compile(rf"(\s+)(#\s*)?{re.escape(key)}:")
    for i in range(header + 1, end):
        if m := pattern.match(lines[i]):
            lines[i] = f"{m.group(1)}{key}: {rendered}"
            break
    else:
        lines.insert(header + 1, f"  {key}: {rendered}")
    return "\n".join(lines) + "\n"


def set_value(config_file: Path, key: str, raw_value: str) -> str:
    """Set a dotted key after validating the whole config; return the value as stored."""
    parts = split_key(key)
    _load(config_file)  # refuse to edit a file that is missing or already broken
    text = config_file.read_text(encoding="utf-8")
    document = yaml.safe_load(text) or {}
    errors: list[str] = []
    for candidate in _candidates(raw_value):
        wanted = _with_value(document, parts, candidate)
        try:
            config = DaemonConfig.model_validate(wanted)
        except ValidationError as exc:
            errors = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
            continue
        edited = edit_text(text, parts, candidate)
        if yaml.safe_load(edited) != wanted:
            edited = yaml.safe_dump(wanted, sort_keys=False)
        write_private_file(config_file, edited)
        return format_value(_lookup(config, parts))
    raise ConfigError(
        f"invalid value {raw_value!r} for {key}",
        hint="nothing was written; see `haloyd config get` for the current values",
        problems=tuple(errors),
    )
