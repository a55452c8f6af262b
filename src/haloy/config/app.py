"""haloy.yaml / .yml / .json / .toml: load, merge targets, validate, apply Haloy's defaults.

`load_app_config(path_or_dir)` returns an `AppConfig` whose `targets` are fully merged
`AppTarget`s with defaults applied. Values stay references (see haloy.config.resolve).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from haloy.config.app_models import (
    AppFile,
    BuildConfig,
    DeploymentStrategy,
    Domain,
    ImageHistory,
    ImageSpec,
    NamingStrategy,
    Preset,
    PullPolicy,
    RegistryAuth,
    SecretProviders,
)
from haloy.config.app_rules import file_rules, target_rules
from haloy.config.merge import MergedTarget, merge_targets
from haloy.config.problems import Problem, config_error, validate_document
from haloy.config.source import Document, Loc, read_document
from haloy.config.values import EnvVar, ValueSource
from haloy.errors import ConfigError

CONFIG_NAMES = ("haloy.yaml", "haloy.yml", "haloy.json", "haloy.toml")
DEFAULT_PORT = 8080
DEFAULT_HEALTH_CHECK_PATH = "/"
DEFAULT_REPLICAS = 1
DEFAULT_MIN_READY_SECONDS = 0
DEFAULT_HISTORY_COUNT = 6
DEFAULT_PLATFORM = "linux/amd64"
DEFAULT_PULL_POLICY: PullPolicy = "always"
DEFAULT_TAG = "latest"


class _Effective(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Image(_Effective):
    """The image of a target with every default applied."""

    repository: str
    tag: str
    pull_policy: PullPolicy
    history: ImageHistory
    registry: RegistryAuth | None
    build: bool
    build_config: BuildConfig | None

    @property
    def ref(self) -> str:
        """`repository:tag`."""
        return f"{self.repository}:{self.tag}"


class AppTarget(_Effective):
    """One deployable app: a target merged over the root, with Haloy's defaults."""

    target: str | None
    name: str
    server: str
    api_token: ValueSource | None
    image: Image
    domains: tuple[Domain, ...]
    replicas: int
    port: int
    health_check_path: str
    min_ready_seconds: int
    env: tuple[EnvVar, ...]
    volumes: tuple[str, ...]
    network: str | None
    deployment_strategy: DeploymentStrategy
    naming_strategy: NamingStrategy
    protected: bool
    preset: Preset | None
    pre_deploy: tuple[str, ...]
    post_deploy: tuple[str, ...]


@dataclass(frozen=True)
class AppConfig:
    """A validated haloy.yaml: the file as written, its merged targets, and where things are."""

    document: Document
    file: AppFile
    targets: tuple[AppTarget, ...]
    merged: tuple[MergedTarget, ...]

    @property
    def path(self) -> Path:
        return self.document.path

    @property
    def global_pre_deploy(self) -> tuple[str, ...]:
        return tuple(self.file.global_pre_deploy or ())

    @property
    def global_post_deploy(self) -> tuple[str, ...]:
        return tuple(self.file.global_post_deploy or ())

    @property
    def secret_providers(self) -> SecretProviders:
        return self.file.secret_providers or SecretProviders()

    def select(self, names: list[str] | tuple[str, ...] = ()) -> tuple[AppTarget, ...]:
        """The targets named (by target key or app name), or all of them."""
        if not names:
            return self.targets
        known = {t.name: t for t in self.targets}
        known.update({t.target: t for t in self.targets if t.target})
        missing = [n for n in names if n not in known]
        if missing:
            raise ConfigError(
                f"{self.path}: unknown target {', '.join(map(repr, missing))}",
                hint=f"targets in this file: {', '.join(known)}",
            )
        return tuple(known[n] for n in names)

    def where(self, target: AppTarget, field: str, env_name: str | None = None) -> str:
        """`file:line` of a target's field (or of one env entry) for messages."""
        merged = next(m for m in self.merged if m.spec.name == target.name)
        loc: Loc = merged.origin(field)
        if env_name is not None:
            names = [e.name for e in merged.spec.env or []]
            if env_name in names:
                loc = merged.env_origins[names.index(env_name)]
        return self.document.where(loc)

    def stored(self) -> dict[str, Any]:
        """The config as kept for history and rollback: references only, never plaintext.

        Spelt as haloy.yaml is (snake_case, `from`), so it reloads through the same models.
        """
        dumped = self.file.model_dump(mode="json", exclude_unset=True, by_alias=False)
        result: dict[str, Any] = _rename_from(dumped)
        return result


def _rename_from(value: Any) -> Any:
    if isinstance(value, dict):
        return {("from" if k == "from_" else k): _rename_from(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rename_from(v) for v in value]
    return value


def find_config_file(path: Path | str | None = None) -> Path:
    """The config file `path` names, or the haloy.* file in the directory it names (default .)."""
    base = Path(path) if path is not None else Path.cwd()
    if base.is_file():
        return base
    if not base.exists():
        raise ConfigError(f"{base}: no such file or directory", hint="check the -c path")
    found = [base / name for name in CONFIG_NAMES if (base / name).is_file()]
    if not found:
        raise ConfigError(
            f"no haloy config in {base}",
            hint=f"create one of {', '.join(CONFIG_NAMES)} or point -c at the file",
        )
    if len(found) > 1:
        raise ConfigError(
            f"several haloy configs in {base}: {', '.join(p.name for p in found)}",
            hint="keep one, or choose with -c FILE",
        )
    return found[0]


def _image(spec: ImageSpec, preset: str | None) -> Image:
    repository, tag = spec.repository or "", spec.tag
    history = spec.history or ImageHistory(strategy="none" if preset else "local")
    if history.strategy != "none" and history.count is None:
        history = history.model_copy(update={"count": DEFAULT_HISTORY_COUNT})
    build = spec.build if spec.build is not None else spec.build_config is not None
    build_config = spec.build_config
    if build:
        build_config = build_config or BuildConfig()
        build_config = build_config.model_copy(
            update={
                "context": build_config.context or ".",
                "dockerfile": build_config.dockerfile or "Dockerfile",
                "platform": build_config.platform or DEFAULT_PLATFORM,
                "push": build_config.push or ("registry" if spec.registry else "server"),
            }
        )
    return Image(
        repository=repository,
        tag=tag or DEFAULT_TAG,
        pull_policy=spec.pull_policy or DEFAULT_PULL_POLICY,
        history=history,
        registry=spec.registry,
        build=build,
        build_config=build_config,
    )


def effective_target(m: MergedTarget) -> AppTarget:
    """A merged, rule-checked target with Haloy's defaults filled in."""
    s = m.spec
    assert s.image is not None and s.name and s.server  # guaranteed by target_rules
    return AppTarget(
        target=m.key,
        name=s.name,
        server=s.server,
        api_token=s.api_token,
        image=_image(s.image, s.preset),
        domains=tuple(s.domains or ()),
        replicas=s.replicas or DEFAULT_REPLICAS,
        port=s.port or DEFAULT_PORT,
        health_check_path=s.health_check_path or DEFAULT_HEALTH_CHECK_PATH,
        min_ready_seconds=s.min_ready_seconds or DEFAULT_MIN_READY_SECONDS,
        env=tuple(s.env or ()),
        volumes=tuple(s.volumes or ()),
        network=s.network,
        deployment_strategy=s.deployment_strategy or "rolling",
        naming_strategy=s.naming_strategy or "dynamic",
        protected=bool(s.protected),
        preset=s.preset,
        pre_deploy=tuple(s.pre_deploy or ()),
        post_deploy=tuple(s.post_deploy or ()),
    )


def app_config_from_document(doc: Document) -> AppConfig:
    """Validate a parsed document into an AppConfig; every problem is reported at once."""
    file = validate_document(AppFile, doc)
    problems: list[Problem] = []
    merged = merge_targets(file, problems)
    for target in merged:
        problems.extend(target_rules(target, file))
    problems.extend(file_rules(file, merged))
    if problems:
        raise config_error(doc, AppFile, problems)
    targets = tuple(effective_target(m) for m in merged)
    return AppConfig(doc, file, targets, tuple(merged))


def load_app_config(path: Path | str | None = None) -> AppConfig:
    """Find, read and validate haloy.yaml (or .yml/.json/.toml) at a file or in a directory."""
    return app_config_from_document(read_document(find_config_file(path)))
