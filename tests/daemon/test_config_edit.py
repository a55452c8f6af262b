"""Text edits of haloyd.yaml keep comments and land the value in the right section."""

from __future__ import annotations

import pytest
import yaml

from haloy.config.daemon import default_daemon_yaml
from haloy.daemon.config_edit import edit_text, split_key
from haloy.errors import ConfigError

DEFAULT = default_daemon_yaml(None)


@pytest.mark.parametrize(
    ("parts", "value"),
    [
        (["api", "domain"], "api.example.com"),  # replaces the commented-out line
        (["api", "listen"], "127.0.0.1:1234"),
        (["health_monitor", "fall"], 7),
        (["acme", "email"], "me@example.com"),
        (["proxy", "workers"], 4),
    ],
)
def test_edit_text_sets_value_and_keeps_comments(parts: list[str], value: object) -> None:
    edited = edit_text(DEFAULT, parts, value)
    assert yaml.safe_load(edited)[parts[0]][parts[1]] == value
    before, after = DEFAULT.splitlines(), edited.splitlines()
    assert len(after) == len(before)
    assert sum(a != b for a, b in zip(before, after, strict=True)) == 1  # every comment kept


def test_edit_text_adds_a_missing_section() -> None:
    edited = edit_text("api:\n  listen: ':9922'\n", ["proxy", "workers"], 2)
    assert yaml.safe_load(edited) == {"api": {"listen": ":9922"}, "proxy": {"workers": 2}}


def test_edit_text_only_touches_the_named_section() -> None:
    text = "api:\n  listen: ':1'\nproxy:\n  workers: 1\n"
    edited = edit_text(text, ["proxy", "listen"], "x")
    assert yaml.safe_load(edited)["api"] == {"listen": ":1"}


@pytest.mark.parametrize("key", ["nope", "api.nope", "api.listen.deeper"])
def test_split_key_rejects_unknown_keys(key: str) -> None:
    with pytest.raises(ConfigError):
        split_key(key)
