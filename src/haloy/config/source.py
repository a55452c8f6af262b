"""Config source files: parse YAML, JSON or TOML into plain data, remembering key lines.

Every error message names `file:line`, so a parsed `Document` keeps a line for each key path.
YAML gives exact marks through PyYAML's composed node tree; JSON and TOML parsers give no
positions, so their lines are found by scanning the text for each key in order (best effort,
always pointing at the key itself or at its nearest enclosing key).
"""

from __future__ import annotations

import bisect
import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from haloy.errors import ConfigError

Format = Literal["yaml", "json", "toml"]
Loc = tuple[str | int, ...]

FORMATS: Mapping[str, Format] = {".yaml": "yaml", ".yml": "yaml", ".json": "json", ".toml": "toml"}
_TOML_LINE = re.compile(r"at line (\d+)")
_TOML_WHERE = re.compile(r"\s*\(at line \d+, column \d+\)|\s*\(at end of document\)")


@dataclass(frozen=True)
class Document:
    """Plain data parsed from one file, with the line of every key path (1-based)."""

    path: Path
    format: Format
    data: Any
    text: str
    lines: Mapping[Loc, int] = field(default_factory=dict)

    def line_of(self, loc: Loc) -> int:
        """The line of `loc`, or of its nearest ancestor that has one; 1 for the root."""
        for end in range(len(loc), 0, -1):
            known = self.lines.get(loc[:end])
            if known is not None:
                return known
        if self.format != "yaml":
            return scan_line(self.text, loc)
        return 1

    def where(self, loc: Loc) -> str:
        """`file:line` for a key path."""
        return f"{self.path}:{self.line_of(loc)}"


def format_of(path: Path) -> Format:
    """The format a file name implies."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ConfigError(
            f"{path}: unsupported config file type {path.suffix or '(none)'!r}",
            hint="use .yaml, .yml, .json or .toml",
        )
    return fmt


def read_document(path: Path) -> Document:
    """Read and parse a config file; syntax errors become a ConfigError naming file:line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no such file", hint="check the -c path") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    return parse_text(text, path, format_of(path))


def parse_text(text: str, path: Path, fmt: Format) -> Document:
    """Parse `text` as `fmt`; `path` is only used in messages."""
    if fmt == "yaml":
        return _parse_yaml(text, path)
    if fmt == "json":
        return _parse_json(text, path)
    return _parse_toml(text, path)


def _syntax_error(path: Path, line: int, fmt: Format, detail: str) -> ConfigError:
    return ConfigError(
        f"{path}: invalid {fmt.upper()}",
        hint=f"fix the {fmt.upper()} syntax at line {line}",
        problems=(f"{path}:{line}: syntax: {detail}",),
    )


def _parse_yaml(text: str, path: Path) -> Document:
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        detail = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        raise _syntax_error(path, line, "yaml", detail or "malformed document") from exc
    except yaml.YAMLError as exc:
        raise _syntax_error(path, 1, "yaml", str(exc)) from exc
    finally:
        loader.dispose()
    lines: dict[Loc, int] = {}
    duplicates: list[str] = []
    if node is not None:
        _yaml_lines(node, (), lines, duplicates, path)
    if duplicates:
        raise ConfigError(
            f"{path}: duplicate keys",
            hint="each key may appear once per mapping",
            problems=tuple(duplicates),
        )
    return Document(path, "yaml", data, text, lines)


def _yaml_lines(
    node: Node, loc: Loc, lines: dict[Loc, int], duplicates: list[str], path: Path
) -> None:
    if isinstance(node, MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                continue
            key = key_node.value
            child = (*loc, key)
            line = key_node.start_mark.line + 1
            if key in seen and key != "<<":
                dotted = ".".join(str(p) for p in child)
                duplicates.append(f"{path}:{line}: {dotted}: duplicate key")
            seen.add(key)
            lines.setdefault(child, line)
            _yaml_lines(value_node, child, lines, duplicates, path)
    elif isinstance(node, SequenceNode):
        for i, item in enumerate(node.value):
            child = (*loc, i)
            lines[child] = item.start_mark.line + 1
            _yaml_lines(item, child, lines, duplicates, path)


def _parse_json(text: str, path: Path) -> Document:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _syntax_error(path, exc.lineno, "json", exc.msg) from exc
    return Document(path, "json", data, text, json_lines(text))


_JSON_SPACE = re.compile(r"[ \t\n\r]*")
# NaN and ±Infinity too: json.loads accepts them (found by tests/config/test_fuzz.py).
_JSON_SCALAR = re.compile(r"-?[0-9][0-9.eE+-]*|true|false|null|-?Infinity|NaN")


def json_lines(text: str) -> dict[Loc, int]:
    """The line of every key and list item of a JSON text that json.loads already accepted."""
    newlines = [i for i, ch in enumerate(text) if ch == "\n"]
    lines: dict[Loc, int] = {}

    def line_at(pos: int) -> int:
        return bisect.bisect_left(newlines, pos) + 1

    def skip(pos: int) -> int:
        match = _JSON_SPACE.match(text, pos)
        return match.end() if match else pos

    def value(pos: int, loc: Loc) -> int:
        pos = skip(pos)
        char = text[pos]
        if char == "{":
            pos = skip(pos + 1)
            while text[pos] != "}":
                key, end = json.decoder.scanstring(text, pos + 1)  # type: ignore[attr-defined]
                lines[(*loc, key)] = line_at(pos)
                pos = value(skip(end) + 1, (*loc, key))  # skip the ':'
                pos = skip(skip(pos) + (text[skip(pos)] == ","))
            return pos + 1
        if char == "[":
            pos, index = skip(pos + 1), 0
            while text[pos] != "]":
                lines[(*loc, index)] = line_at(pos)
                pos = value(pos, (*loc, index))
                pos = skip(skip(pos) + (text[skip(pos)] == ","))
                index += 1
            return pos + 1
        if char == '"':
            return int(json.decoder.scanstring(text, pos + 1)[1])  # type: ignore[attr-defined]
        match = _JSON_SCALAR.match(text, pos)
        return match.end() if match else pos + 1

    value(0, ())
    return lines


def _parse_toml(text: str, path: Path) -> Document:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = _TOML_LINE.search(str(exc))
        line = int(found[1]) if found else 1
        if found is None and "end of document" in str(exc):
            line = max(1, len(text.splitlines()))
        detail = _TOML_WHERE.sub("", str(exc))
        raise _syntax_error(path, line, "toml", detail) from exc
    return Document(path, "toml", data, text)


def scan_line(text: str, loc: Loc) -> int:
    """Best-effort line of a key path in JSON/TOML text: each key searched after its parent."""
    lines = text.splitlines()
    start = 0
    for part in loc:
        if isinstance(part, int):
            # `[[env]]` array-of-tables: item N is the N-th repetition of the header.
            header = lines[start].strip() if start < len(lines) else ""
            if header.startswith("[["):
                repeats = [i for i in range(start, len(lines)) if lines[i].strip() == header]
                if part < len(repeats):
                    start = repeats[part]
            continue
        key = re.escape(part)
        pattern = re.compile(
            rf"""(^|[\s{{,."'\[])["']?{key}["']?\s*([:=]|\]|\.[\w"'])"""
        )
        for i in range(start, len(lines)):
            if pattern.search(lines[i]):
                start = i
                break
    return start + 1
