"""Source files: every format parses, keeps key lines, and reports syntax errors by line."""

from __future__ import annotations

from pathlib import Path

import pytest

from haloy.config.source import parse_text, read_document, scan_line
from haloy.errors import ConfigError

YAML = """\
name: app
image:
  repository: web
targets:
  prod:
    env:
      - name: A
        value: x
"""

JSON = """\
{
  "name": "app",
  "image": {
    "repository": "web"
  },
  "targets": {
    "prod": {"env": [{"name": "A", "value": "x"}]}
  }
}
"""

TOML = """\
name = "app"

[image]
repository = "web"

[targets.prod]
server = "s"

[[targets.prod.env]]
name = "A"
value = "x"
"""


@pytest.mark.parametrize(
    ("loc", "line"),
    [
        (("name",), 1),
        (("image",), 2),
        (("image", "repository"), 3),
        (("targets", "prod", "env"), 6),
        (("targets", "prod", "env", 0), 7),
        (("targets", "prod", "env", 0, "value"), 8),
        (("targets", "prod", "missing"), 5),
    ],
)
def test_yaml_lines_are_exact(loc: tuple[str | int, ...], line: int) -> None:
    doc = parse_text(YAML, Path("haloy.yaml"), "yaml")
    assert doc.line_of(loc) == line


@pytest.mark.parametrize(
    ("text", "fmt", "loc", "line"),
    [
        (JSON, "json", ("image", "repository"), 4),
        (JSON, "json", ("targets", "prod"), 7),
        (JSON, "json", ("targets", "prod", "env", 0, "value"), 7),
        (TOML, "toml", ("image", "repository"), 4),
        (TOML, "toml", ("targets", "prod"), 6),
        (TOML, "toml", ("targets", "prod", "server"), 7),
        (TOML, "toml", ("targets", "prod", "env", 0, "value"), 11),
    ],
)
def test_json_and_toml_lines_are_found_by_scanning(
    text: str, fmt: str, loc: tuple[str | int, ...], line: int
) -> None:
    doc = parse_text(text, Path(f"haloy.{fmt}"), fmt)  # type: ignore[arg-type]
    assert doc.line_of(loc) == line


JSON_LIST = """\
{
  "env": [
    {"name": "A", "value": "x"},
    {
      "name": "B",
      "value": "y"
    }
  ],
  "tricky": "a \\" [ { string"
}
"""

TOML_TABLES = """\
[[env]]
name = "A"
value = "x"

[[env]]
name = "B"
value = "y"
"""


@pytest.mark.parametrize(
    ("text", "fmt", "loc", "line"),
    [
        (JSON_LIST, "json", ("env", 0), 3),
        (JSON_LIST, "json", ("env", 1), 4),
        (JSON_LIST, "json", ("env", 1, "value"), 6),
        (JSON_LIST, "json", ("tricky",), 9),
        (TOML_TABLES, "toml", ("env", 1, "value"), 7),
        (TOML_TABLES, "toml", ("env", 0, "value"), 3),
    ],
)
def test_list_items_have_their_own_lines(
    text: str, fmt: str, loc: tuple[str | int, ...], line: int
) -> None:
    doc = parse_text(text, Path(f"haloy.{fmt}"), fmt)  # type: ignore[arg-type]
    assert doc.line_of(loc) == line


def test_all_formats_give_the_same_data() -> None:
    yaml_doc = parse_text(YAML, Path("a.yaml"), "yaml")
    json_doc = parse_text(JSON, Path("a.json"), "json")
    assert yaml_doc.data == json_doc.data


@pytest.mark.parametrize(
    ("name", "text", "line"),
    [
        ("bad.yaml", "name: app\nimage: [a,\n", 3),
        ("bad.yaml", "name: app\n  bad: indent\n", 2),
        ("bad.json", '{\n  "name": "app",\n}\n', 3),
        ("bad.toml", 'name = "app"\nport = \n', 2),
    ],
)
def test_syntax_errors_name_file_and_line(tmp_path: Path, name: str, text: str, line: int) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        read_document(path)
    [problem] = info.value.problems
    assert problem.startswith(f"{path}:{line}: syntax: ")


def test_duplicate_yaml_keys_are_errors(tmp_path: Path) -> None:
    path = tmp_path / "haloy.yaml"
    path.write_text("name: a\nport: 1\nname: b\n")
    with pytest.raises(ConfigError) as info:
        read_document(path)
    assert info.value.problems == (f"{path}:3: name: duplicate key",)


def test_unsupported_suffix(tmp_path: Path) -> None:
    path = tmp_path / "haloy.ini"
    path.write_text("")
    with pytest.raises(ConfigError, match="unsupported config file type"):
        read_document(path)


def test_scan_line_falls_back_to_the_parent() -> None:
    assert scan_line('{\n "a": {\n  "b": 1\n }\n}', ("a", "zzz")) == 2
