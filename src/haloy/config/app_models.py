"""haloy.yaml as written: every field optional so targets can override the root.

Field-local rules (domain syntax, app-name pattern, port range, volume syntax) live here so
pydantic reports them at the exact key; rules that need the merged target are in app_rules.
"""

from __future__ import annotations

import posixpath
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from haloy.config.domains import normalize_domain
from haloy.config.values import ConfigModel, EnvVar, ValueSource, scalar_text
from haloy.wire.names import APP_NAME_RULE, is_app_name

MAX_MIN_READY_SECONDS = 600

PullPolicy = Literal["always", "if_missing", "never"]
HistoryStrategy = Literal["local", "registry", "none"]
PushOption = Literal["server", "registry"]
DeploymentStrategy = Literal["rolling", "replace"]
# dynamic: `<app>-<deployment id>-<replica>`; static: the container is named `<app>` (one
# replica, replace deploys), so other containers reach it by that name.
NamingStrategy = Literal["dynamic", "static"]
Preset = Literal["database", "service"]


def volume_problem(spec: str) -> str | None:
    """Why a volume spec is not `name:/path[:opts]` or `/abs/host:/path[:opts]`, else None."""
    parts = spec.strip().split(":")
    if len(parts) not in (2, 3):
        return f"invalid volume {spec!r}; expected 'name-or-/host/path:/container/path[:ro]'"
    source, target = parts[0].strip(), parts[1].strip()
    if not source:
        return f"volume {spec!r} has an empty source"
    if not posixpath.isabs(source) and (source.startswith(".") or "/" in source):
        return f"volume source {source!r} in {spec!r} must be a volume name or an absolute path"
    if not posixpath.isabs(target):
        return f"volume target {target!r} in {spec!r} must be an absolute container path"
    if len(parts) == 3 and not re.fullmatch(r"[a-z,]+", parts[2]):
        return f"invalid volume options {parts[2]!r} in {spec!r}; e.g. ro or rw"
    return None


def _check_volume(spec: str) -> str:
    problem = volume_problem(spec)
    if problem:
        raise ValueError(problem)
    return spec


DomainName = Annotated[str, AfterValidator(normalize_domain)]
VolumeSpec = Annotated[str, AfterValidator(_check_volume)]


class ImageHistory(ConfigModel):
    """How many previous images are kept for rollback, and where."""

    strategy: HistoryStrategy = "local"
    count: int | None = Field(default=None, ge=1)
    pattern: str | None = None


class RegistryAuth(ConfigModel):
    """Credentials to pull from (or push to) a registry."""

    server: str | None = None
    username: ValueSource
    password: ValueSource


class BuildArg(ConfigModel):
    """A docker build argument."""

    name: str
    value: str | None = None

    @field_validator("value", mode="before")
    @classmethod
    def _value(cls, value: Any) -> Any:
        return scalar_text(value)


class BuildConfig(ConfigModel):
    """How to build the image locally."""

    context: str | None = None
    dockerfile: str | None = Field(default=None, description="Relative to the context.")
    platform: str | None = None
    args: list[BuildArg] | None = None
    push: PushOption | None = None


class ImageSpec(ConfigModel):
    """The image to deploy; a bare string is shorthand for `repository`."""

    repository: str | None = None
    tag: str | None = None
    pull_policy: PullPolicy | None = None
    history: ImageHistory | None = None
    registry: RegistryAuth | None = None
    build: bool | None = None
    build_config: BuildConfig | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, str):
            data = {"repository": data}
        if isinstance(data, dict) and isinstance(data.get("repository"), str) and "tag" not in data:
            # "nginx:1.25" names a tag; "localhost:5000/app" names a registry port.
            repository, sep, tag = data["repository"].rpartition(":")
            if sep and "/" not in tag and repository:
                data = {**data, "repository": repository, "tag": tag}
        return data

    @field_validator("repository", "tag")
    @classmethod
    def _no_space(cls, value: str | None) -> str | None:
        if value is not None and (not value.strip() or re.search(r"\s", value)):
            raise ValueError(f"{value!r} must be non-empty and contain no whitespace")
        return value


class Domain(ConfigModel):
    """A canonical domain and the aliases that redirect to it; a bare string is the domain."""

    domain: DomainName
    aliases: list[DomainName] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"domain": data} if isinstance(data, str) else data


class OnePasswordSource(ConfigModel):
    """A 1Password item: `op read op://<vault>/<item>/<key>`."""

    account: str | None = None
    vault: str
    item: str


class SopsSource(ConfigModel):
    """A sops-encrypted file (relative to the config file): `sops decrypt <file>`."""

    file: str
    format: Literal["yaml", "json", "dotenv"] | None = None


class SecretProviders(ConfigModel):
    """Named secret sources, referenced as "provider:source:key"."""

    onepassword: dict[str, OnePasswordSource] | None = None
    sops: dict[str, SopsSource] | None = None


class TargetSpec(ConfigModel):
    """The fields a target may set; the root sets the same ones as defaults for every target."""

    name: str | None = None
    preset: Preset | None = None
    image: ImageSpec | None = None
    image_key: str | None = None
    server: str | None = None
    api_token: ValueSource | None = None
    deployment_strategy: DeploymentStrategy | None = None
    naming_strategy: NamingStrategy | None = None
    protected: bool | None = None
    domains: list[Domain] | None = None
    env: list[EnvVar] | None = None
    health_check_path: str | None = None
    min_ready_seconds: int | None = Field(default=None, ge=0, le=MAX_MIN_READY_SECONDS)
    port: int | None = Field(default=None, ge=1, le=65535)
    replicas: int | None = Field(default=None, ge=1)
    volumes: list[VolumeSpec] | None = None
    network: str | None = None
    pre_deploy: list[str] | None = None
    post_deploy: list[str] | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and not is_app_name(value):
            raise ValueError(f"invalid app name {value!r}; use {APP_NAME_RULE}")
        return value

    @field_validator("port", mode="before")
    @classmethod
    def _port(cls, value: Any) -> Any:
        # Haloy accepts the port as a number or a numeric string.
        if isinstance(value, str) and value.strip().isdigit():
            return int(value)
        if isinstance(value, bool | float):
            raise ValueError(f"port must be a whole number, got {value!r}")
        return value

    @field_validator("health_check_path")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("/"):
            raise ValueError(f"must start with '/', got {value!r}")
        return value

    @field_validator("server")
    @classmethod
    def _server(cls, value: str | None) -> str | None:
        if value is not None and (not value.strip() or re.search(r"\s", value)):
            raise ValueError(f"server {value!r} must be a host name or URL without spaces")
        return value


class AppFile(TargetSpec):
    """The whole haloy.yaml: root fields, shared images, targets and global hooks."""

    images: dict[str, ImageSpec] | None = None
    targets: dict[str, TargetSpec] | None = None
    secret_providers: SecretProviders | None = None
    global_pre_deploy: list[str] | None = None
    global_post_deploy: list[str] | None = None

    @field_validator("targets", mode="before")
    @classmethod
    def _empty_targets(cls, value: Any) -> Any:
        # `prod:` with nothing under it is a target that inherits everything.
        if isinstance(value, dict):
            return {k: ({} if v is None else v) for k, v in value.items()}
        return value
