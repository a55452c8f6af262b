"""Resolve a target's values on the client: literals, env vars, dotenv files, secrets, `${NAME}`.

The result (`ResolvedTarget`) holds plaintext and is only handed to the deploy request; the
`AppConfig` it came from keeps references and is what history and rollback store. The
environment is an explicit argument: only the CLI edge reads `os.environ`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from haloy.config.app import AppConfig, AppTarget
from haloy.config.app_models import AppFile
from haloy.config.dotenv import layered_environment
from haloy.config.interpolate import expand, references
from haloy.config.merge import MergedTarget
from haloy.config.problems import Problem, render
from haloy.config.secrets import Runner, SecretError, SecretFetcher, command_runner
from haloy.config.source import Loc
from haloy.config.values import SourceReference, ValueSource
from haloy.errors import ConfigError

MASK = "********"


@dataclass(frozen=True)
class ResolvedTarget:
    """A target with every value in plaintext: env, build args, API token, registry login."""

    target: AppTarget
    env: dict[str, str]
    build_args: dict[str, str]
    api_token: str | None
    registry_username: str | None = None
    registry_password: str | None = None
    secret_names: frozenset[str] = field(default_factory=frozenset)

    def display(self, reveal: bool = False) -> dict[str, Any]:
        """A printable view; values from secret providers are masked unless `reveal`."""

        def shown(name: str, value: str | None) -> str | None:
            hidden = name in self.secret_names and not reveal
            return MASK if hidden and value is not None else value

        return {
            "target": self.target.target,
            "name": self.target.name,
            "server": self.target.server,
            "image": self.target.image.ref,
            "domains": [d.domain for d in self.target.domains],
            "replicas": self.target.replicas,
            "port": self.target.port,
            "env": {k: shown(k, v) for k, v in self.env.items()},
            "build_args": {k: shown(k, v) for k, v in self.build_args.items()},
            "api_token": MASK if self.api_token and not reveal else self.api_token,
        }


class _Resolver:
    """Resolves references for one target, collecting every problem before failing."""

    def __init__(
        self, environ: Mapping[str, str], fetcher: SecretFetcher, fetch_secrets: bool
    ) -> None:
        self.environ = environ
        self.fetcher = fetcher
        self.fetch_secrets = fetch_secrets
        self.problems: list[Problem] = []

    def reference(self, ref: SourceReference, loc: Loc) -> str | None:
        if ref.env is not None:
            value = self.environ.get(ref.env)
            if value is None:
                self.problems.append(Problem(
                    (*loc, "from", "env"),
                    f"environment variable {ref.env!r} is not set (nor in any .env file)",
                ))
            return value
        if not self.fetch_secrets:
            return MASK  # validation without running `op`/`sops`
        try:
            return self.fetcher.fetch(ref.secret or "")
        except SecretError as err:
            detail = f"{err.message} ({err.hint})" if err.hint else err.message
            self.problems.append(Problem((*loc, "from", "secret"), detail))
            return None

    def value(self, source: ValueSource | None, loc: Loc) -> str | None:
        if source is None:
            return None
        if source.from_ is not None:
            return self.reference(source.from_, loc)
        return source.value


def _merged_for(config: AppConfig, target: AppTarget) -> MergedTarget:
    return next(m for m in config.merged if m.spec.name == target.name)


def resolve_target(
    config: AppConfig,
    target: AppTarget,
    environ: Mapping[str, str],
    user_config_dir: Path | None = None,
    runner: Runner | None = None,
    fetch_secrets: bool = True,
) -> ResolvedTarget:
    """Plaintext values for one target; ConfigError lists every value that cannot be found."""
    config_dir = config.path.parent
    env_view = layered_environment(environ, config_dir, user_config_dir, target.target)
    fetcher = SecretFetcher(
        config.secret_providers, config_dir, runner or command_runner(environ)
    )
    r = _Resolver(env_view, fetcher, fetch_secrets)
    merged = _merged_for(config, target)
    templates: dict[str, str | None] = {}
    plain: dict[str, str] = {}
    secret_names: set[str] = set()
    for entry, loc in zip(target.env, merged.env_origins, strict=True):
        if entry.from_ is None:
            templates[entry.name] = entry.value
            continue
        templates[entry.name] = None
        if entry.from_.secret is not None:
            secret_names.add(entry.name)
        value = r.reference(entry.from_, loc)
        if value is not None:
            plain[entry.name] = value
    token = r.value(target.api_token, merged.origin("api_token"))
    registry = target.image.registry
    image_loc = (*merged.origin("image"), "registry")
    user = r.value(registry.username, (*image_loc, "username")) if registry else None
    password = r.value(registry.password, (*image_loc, "password")) if registry else None
    if r.problems:
        lines = render(config.document, AppFile, r.problems)
        raise ConfigError(
            f"{config.path}: cannot resolve {len(lines)} value(s) for {target.name}",
            hint="export the variables, add them to .env, or check the secret provider",
            problems=tuple(lines),
        )
    # Sourced values are final; only literal values are templates (secrets may contain `$`).
    env = expand(templates, plain)
    _taint(templates, secret_names)
    build_args = {e.name: env[e.name] for e in target.env if e.build_arg}
    for arg in (target.image.build_config.args or []) if target.image.build_config else []:
        build_args[arg.name] = arg.value or ""
    return ResolvedTarget(
        target, env, build_args, token, user, password, frozenset(secret_names)
    )


def _taint(templates: Mapping[str, str | None], secret_names: set[str]) -> None:
    """Mark entries that interpolate a secret as secret too, so displays mask them."""
    changed = True
    while changed:
        changed = False
        for name, template in templates.items():
            if name not in secret_names and set(references(template or "")) & secret_names:
                secret_names.add(name)
                changed = True


def resolve_config(
    config: AppConfig,
    environ: Mapping[str, str],
    user_config_dir: Path | None = None,
    targets: tuple[str, ...] = (),
    runner: Runner | None = None,
    fetch_secrets: bool = True,
) -> tuple[ResolvedTarget, ...]:
    """Resolve the selected targets (all by default); problems of all of them at once.

    With `fetch_secrets=False` secret references are not fetched (shown masked), so a
    validation can check env vars and dotenv files without running `op` or `sops`.
    """
    resolved: list[ResolvedTarget] = []
    problems: list[str] = []
    for target in config.select(targets):
        try:
            resolved.append(resolve_target(
                config, target, environ, user_config_dir, runner, fetch_secrets
            ))
        except ConfigError as err:
            problems.extend(err.problems or (err.message,))
    if problems:
        unique = tuple(dict.fromkeys(problems))
        raise ConfigError(
            f"{config.path}: {len(unique)} value(s) cannot be resolved",
            hint="export the variables, add them to .env, or check the secret provider",
            problems=unique,
        )
    return tuple(resolved)
