"""Resolving values on the client: env, dotenv layers, secrets, interpolation."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from haloy.config.app import AppConfig, load_app_config
from haloy.config.dotenv import layered_environment, parse_dotenv
from haloy.config.resolve import MASK, resolve_config
from haloy.config.secrets import command_runner
from haloy.errors import ConfigError

BASE: dict[str, Any] = {"name": "app", "server": "api.example.com", "image": "web:v1"}


def write_config(tmp_path: Path, **fields: Any) -> AppConfig:
    (tmp_path / "haloy.yaml").write_text(yaml.safe_dump({**BASE, **fields}, sort_keys=False))
    return load_app_config(tmp_path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A=1", {"A": "1"}),
        ("export A=1", {"A": "1"}),
        ("A = spaced value  ", {"A": "spaced value"}),
        ("A=x # comment", {"A": "x"}),
        ("A=x#not-comment", {"A": "x#not-comment"}),
        ("A='single $X # kept'", {"A": "single $X # kept"}),
        ('A="line\\nnext \\"q\\""', {"A": 'line\nnext "q"'}),
        ("# comment\n\nA=1\nB=", {"A": "1", "B": ""}),
        ("A=1\nA=2", {"A": "2"}),
    ],
)
def test_parse_dotenv(text: str, expected: dict[str, str]) -> None:
    assert parse_dotenv(text, Path(".env")) == expected


@pytest.mark.parametrize(("text", "line"), [("A=1\nnot a pair", 2), ("A='open", 1)])
def test_bad_dotenv_names_the_line(text: str, line: int) -> None:
    with pytest.raises(ConfigError) as info:
        parse_dotenv(text, Path("x/.env"))
    assert info.value.problems[0].startswith(f"x/.env:{line}: syntax:")


def test_dotenv_layers(tmp_path: Path) -> None:
    user, cfg = tmp_path / "user", tmp_path / "cfg"
    user.mkdir()
    cfg.mkdir()
    (user / ".env").write_text("U=user\nA=user\nB=user\nC=user\nD=user\nE=user\n")
    (cfg / ".env").write_text("A=cfg\nB=cfg\nC=cfg\nD=cfg\nE=cfg\n")
    (cfg / ".env.prod").write_text("B=target\nC=target\nD=target\nE=target\n")
    (user / ".env.local").write_text("D=user-local\nE=user-local\n")
    (cfg / ".env.local").write_text("E=cfg-local\n")
    env = layered_environment({"C": "process", "D": "process"}, cfg, user, "prod")
    assert env == {"U": "user", "A": "cfg", "B": "target", "C": "process",
                   "D": "user-local", "E": "cfg-local"}
    assert layered_environment({}, cfg, None, None)["B"] == "cfg"


def test_env_dotenv_and_interpolation(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        api_token={"from": {"env": "TOKEN"}},
        env=[
            {"name": "HOST", "value": "db"},
            {"name": "USER", "from": {"env": "DB_USER"}, "build_arg": True},
            {"name": "URL", "value": "pg://${USER}@${HOST}/x"},
        ],
    )
    (tmp_path / ".env").write_text("DB_USER=alice\n")
    [r] = resolve_config(config, {"TOKEN": "t0k"})
    assert r.env == {"HOST": "db", "USER": "alice", "URL": "pg://alice@db/x"}
    assert r.build_args == {"USER": "alice"}
    assert r.api_token == "t0k"
    assert r.display()["api_token"] == MASK
    # The config kept for history still holds the reference, not the value.
    assert config.stored()["api_token"] == {"from": {"env": "TOKEN"}}


def test_missing_env_vars_are_reported_together_with_lines(tmp_path: Path) -> None:
    config = write_config(tmp_path, env=[
        {"name": "A", "from": {"env": "NOT_SET_A"}},
        {"name": "B", "value": "x"},
        {"name": "C", "from": {"env": "NOT_SET_C"}},
    ])
    with pytest.raises(ConfigError) as info:
        resolve_config(config, {})
    path = tmp_path / "haloy.yaml"
    assert [p.split(": ", 2)[:2] for p in info.value.problems] == [
        [f"{path}:7", "env.0.from.env"], [f"{path}:12", "env.2.from.env"]]
    assert info.value.exit_code == 2


SOPS_YAML = "db:\n  password: pa$$word\nflat: 1\n"


def fake_tools(calls: list[list[str]]) -> Any:
    def run(argv: list[str]) -> str:
        calls.append(argv)
        if argv[0] == "op":
            return f"secret-of-{argv[-1]}\n"
        return SOPS_YAML

    return run


def test_secrets_from_onepassword_and_sops(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        secret_providers={
            "onepassword": {"prod": {"account": "acme", "vault": "V", "item": "I"}},
            "sops": {"main": {"file": "secrets.enc.yaml"}},
        },
        env=[
            {"name": "OP", "from": {"secret": "onepassword:prod:password"}},
            {"name": "DB", "from": {"secret": "sops:main:db.password"}},
            {"name": "FLAT", "from": {"secret": "sops:main:flat"}},
            {"name": "URL", "value": "pg://u:${DB}@h"},
        ],
    )
    calls: list[list[str]] = []
    [r] = resolve_config(config, {}, runner=fake_tools(calls))
    assert r.env == {"OP": "secret-of-op://V/I/password", "DB": "pa$$word", "FLAT": "1",
                     "URL": "pg://u:pa$$word@h"}
    assert calls == [
        ["op", "read", "--account", "acme", "--no-newline", "op://V/I/password"],
        ["sops", "decrypt", str((tmp_path / "secrets.enc.yaml").resolve())],
    ]  # the sops file is decrypted once
    shown = r.display()["env"]
    assert shown["OP"] == shown["DB"] == shown["URL"] == MASK  # URL embeds a secret


def test_missing_secret_key(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        secret_providers={"sops": {"main": {"file": "s.yaml"}}},
        env=[{"name": "X", "from": {"secret": "sops:main:nope"}}],
    )
    with pytest.raises(ConfigError) as info:
        resolve_config(config, {}, runner=fake_tools([]))
    [problem] = info.value.problems
    assert ": env.0.from.secret: secret 'sops:main:nope': key 'nope' not found" in problem


def test_secrets_are_not_fetched_when_only_validating(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        secret_providers={"sops": {"main": {"file": "s.yaml"}}},
        env=[{"name": "X", "from": {"secret": "sops:main:k"}}],
    )

    def refuse(argv: list[str]) -> str:
        raise AssertionError("must not run")

    [r] = resolve_config(config, {}, runner=refuse, fetch_secrets=False)
    assert r.env == {"X": MASK}


def _stub(bin_dir: Path, name: str, script: str) -> None:
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_command_runner_runs_the_tools(tmp_path: Path) -> None:
    # `op` and `sops` are not installable offline here; stand-in scripts on PATH check that
    # the runner passes argv and environment through and maps failures to SecretError.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _stub(bin_dir, "op", 'printf "%s|%s" "$*" "$OP_SESSION"\n')
    _stub(bin_dir, "sops", 'echo "cannot decrypt $2" >&2\nexit 3\n')
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "OP_SESSION": "sess"}
    run = command_runner(env, timeout=10)
    assert run(["op", "read", "op://v/i/k"]) == "read op://v/i/k|sess"
    with pytest.raises(ConfigError, match=r"sops decrypt failed: cannot decrypt f\.yaml"):
        run(["sops", "decrypt", "f.yaml"])
    with pytest.raises(ConfigError, match="not installed"):
        command_runner({"PATH": str(bin_dir)})(["no-such-tool-xyz"])
