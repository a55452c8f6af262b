"""Secret providers, run on the client: 1Password (`op read`) and sops (`sops decrypt`).

A reference is "provider:source:key"; `source` names an entry under `secret_providers`.
The command runner is injected so the lookup logic is testable without the tools.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from haloy.config.app_models import OnePasswordSource, SecretProviders, SopsSource
from haloy.config.dotenv import parse_dotenv
from haloy.errors import ConfigError

Runner = Callable[[list[str]], str]
SECRET_TIMEOUT = 60.0  # `op` may wait for a biometric unlock prompt


class SecretError(ConfigError):
    """A secret could not be fetched (tool missing, not signed in, key absent)."""


def command_runner(environ: Mapping[str, str], timeout: float = SECRET_TIMEOUT) -> Runner:
    """A Runner that executes the tool with `environ` and returns its stdout."""

    def run(argv: list[str]) -> str:
        try:
            proc = subprocess.run(
                argv, capture_output=True, text=True, timeout=timeout, env=dict(environ),
                check=False,
            )
        except FileNotFoundError as exc:
            raise SecretError(
                f"{argv[0]!r} is not installed or not on PATH",
                hint=_INSTALL_HINTS.get(argv[0], "install it, or use from: {env: ...} instead"),
            ) from exc
        except subprocess.TimeoutExpired as exc:
            raise SecretError(f"{argv[0]} did not answer within {timeout:g}s") from exc
        if proc.returncode != 0:
            detail = (proc.stderr or proc.stdout).strip().splitlines()
            raise SecretError(
                f"{' '.join(argv[:2])} failed: {detail[-1] if detail else proc.returncode}",
                hint=_FAIL_HINTS.get(argv[0]),
            )
        return proc.stdout

    return run


_INSTALL_HINTS = {
    "op": "install the 1Password CLI (op) and sign in with `op signin`",
    "sops": "install sops and make the decryption key available",
}
_FAIL_HINTS = {
    "op": "check that you are signed in (`op whoami`) and the vault/item/field exist",
    "sops": "check that the file decrypts with `sops decrypt <file>`",
}


def _lookup(data: Any, key: str) -> Any:
    """A dotted key inside decrypted YAML/JSON (`db.password`), or the flat key."""
    if isinstance(data, dict) and key in data:
        return data[key]
    node = data
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(key)
        node = node[part]
    return node


class SecretFetcher:
    """Fetch secrets for references; each sops file is decrypted once per fetcher."""

    def __init__(self, providers: SecretProviders, config_dir: Path, runner: Runner) -> None:
        self._providers = providers
        self._config_dir = config_dir
        self._run = runner
        self._sops_cache: dict[str, Any] = {}

    def fetch(self, reference: str) -> str:
        """The plaintext for "provider:source:key"."""
        provider, source, key = reference.split(":", 2)
        sources: Mapping[str, Any] = getattr(self._providers, provider, None) or {}
        if source not in sources:
            raise SecretError(
                f"secret {reference!r}: no source {source!r} under secret_providers.{provider}"
            )
        if provider == "onepassword":
            return self._onepassword(sources[source], key)
        return self._sops(source, sources[source], key, reference)

    def _onepassword(self, src: OnePasswordSource, key: str) -> str:
        argv = ["op", "read", "--no-newline", f"op://{src.vault}/{src.item}/{key}"]
        if src.account:
            argv[2:2] = ["--account", src.account]
        return self._run(argv).removesuffix("\n")

    def _sops(self, name: str, src: SopsSource, key: str, reference: str) -> str:
        if name not in self._sops_cache:
            path = (self._config_dir / src.file).resolve()
            text = self._run(["sops", "decrypt", str(path)])
            fmt = src.format or _format_of(path)
            try:
                if fmt == "dotenv":
                    self._sops_cache[name] = parse_dotenv(text, path)
                elif fmt == "json":
                    self._sops_cache[name] = json.loads(text)
                else:
                    self._sops_cache[name] = yaml.safe_load(text)
            except (ValueError, yaml.YAMLError) as exc:
                raise SecretError(f"{src.file}: decrypted text is not valid {fmt}") from exc
        try:
            value = _lookup(self._sops_cache[name], key)
        except KeyError:
            raise SecretError(
                f"secret {reference!r}: key {key!r} not found in {src.file}"
            ) from None
        if isinstance(value, dict | list):
            raise SecretError(f"secret {reference!r}: {key!r} is not a single value")
        return str(value)


def _format_of(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".json":
        return "json"
    if suffix == ".env" or path.name.startswith(".env"):
        return "dotenv"
    return "yaml"
