"""Private dotenv files: parsing, in-place updates, atomic 0600 writes (in memory / tmp)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from haloy.config.envfile import parse_env, update_env_file, write_private_file
from haloy.daemon.api_token import is_valid_token, new_token, read_token, write_token
from haloy.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A=1\nB=two\n", {"A": "1", "B": "two"}),
        ("# comment\n\nexport A = 'x y'\n", {"A": "x y"}),
        ('A="quoted"\nA=later\n', {"A": "later"}),
        ("A=\n", {"A": ""}),
        ("URL=http://h/?a=b\n", {"URL": "http://h/?a=b"}),
    ],
)
def test_parse_env(text: str, expected: dict[str, str]) -> None:
    assert parse_env(text) == expected


def test_parse_env_names_the_bad_line() -> None:
    with pytest.raises(ConfigError, match=r"\.env:2: expected KEY=value"):
        parse_env("A=1\njust words\n")


def test_update_keeps_other_lines_and_is_private(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("# keep me\nOTHER=1\nHALOY_API_TOKEN=old\n")
    path.chmod(0o644)
    update_env_file(path, {"HALOY_API_TOKEN": "new", "ADDED": "x", "OTHER": None})
    assert path.read_text() == "# keep me\nHALOY_API_TOKEN=new\nADDED=x\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_write_private_file_leaves_no_temp_files(tmp_path: Path) -> None:
    write_private_file(tmp_path / "f", "one")
    write_private_file(tmp_path / "f", "two")
    assert [p.name for p in tmp_path.iterdir()] == ["f"]
    assert (tmp_path / "f").read_text() == "two"


def test_token_roundtrip(tmp_path: Path) -> None:
    token = new_token()
    assert is_valid_token(token) and len(token) == 64 and token != new_token()
    write_token(tmp_path / ".env", token)
    assert read_token(tmp_path / ".env") == token
    with pytest.raises(ConfigError, match="no HALOY_API_TOKEN"):
        read_token(tmp_path / "missing.env")
