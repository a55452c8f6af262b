"""`haloyd init`: lay out a server's config and data dirs, its API token and Docker network.

Order matters: refuse an existing setup, validate the config text, make sure Docker answers
and the network exists, and only then write files, so a failed init leaves nothing behind.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import ValidationError

from haloy.api_probe import listen_to_base_url
from haloy.config.daemon import DaemonConfig, default_daemon_yaml
from haloy.config.envfile import write_private_file
from haloy.config.paths import Paths
from haloy.daemon.api_token import new_token, write_token
from haloy.errors import ConfigError, HaloyError
from haloy.runtime.docker import DockerRuntime

PRIVATE_DIR_MODE = 0o700


@dataclass(frozen=True)
class InitResult:
    """What `init_server` made: the token, the URL to give `haloy server add`, the network."""

    paths: Paths
    token: str
    api_url: str
    network: str
    network_created: bool


def server_dirs(paths: Paths) -> tuple[Path, ...]:
    """Every directory a server needs, each kept at mode 0700."""
    return (paths.config_dir, paths.data_dir, paths.certs_dir, paths.db_dir, paths.proxy_dir)


def existing_setup(paths: Paths) -> list[Path]:
    """Files that show haloyd was initialised here already."""
    return [p for p in (paths.daemon_config, paths.env_file) if p.exists()]


def render_config(api_domain: str | None) -> tuple[str, DaemonConfig]:
    """The default haloyd.yaml text for `api_domain`, validated through the model."""
    text = default_daemon_yaml(api_domain or "")
    try:
        config = DaemonConfig.model_validate(yaml.safe_load(text) or {})
    except ValidationError as exc:
        problems = tuple(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(
            f"invalid --api-domain {api_domain!r}",
            hint="give the host name the API will answer on, e.g. api.example.com",
            problems=problems,
        ) from exc
    return text, config


def api_url(config: DaemonConfig) -> str:
    """The URL a client should use: https://<api.domain>, else the loopback listener."""
    if config.api.domain:
        return f"https://{config.api.domain}"
    return listen_to_base_url(config.api.listen)


async def ensure_network(network: str, docker_host: str | None) -> bool:
    """Create the network unless it exists; True if this call created it."""
    runtime = await DockerRuntime.connect(docker_host)
    try:
        if await runtime.network_exists(network):
            return False
        await runtime.ensure_network(network)
        return True
    finally:
        await runtime.close()


def make_dirs(paths: Paths) -> None:
    """Create the server dirs; chmod explicitly because mkdir's mode is masked by umask."""
    for directory in server_dirs(paths):
        try:
            directory.mkdir(parents=True, exist_ok=True)
            directory.chmod(PRIVATE_DIR_MODE)
        except OSError as exc:
            raise HaloyError(
                f"cannot create {directory}: {exc.strerror or exc}",
                hint="run as root, or choose writable dirs with --config-dir and --data-dir",
            ) from exc


def init_server(
    paths: Paths,
    *,
    api_domain: str | None,
    override: bool,
    network: str,
    docker_host: str | None,
) -> InitResult:
    """Initialise a server; ConfigError on an existing setup unless `override`."""
    found = existing_setup(paths)
    if found and not override:
        raise ConfigError(
            f"haloyd is already initialised here: {', '.join(map(str, found))}",
            hint=(
                "run `haloyd verify` to check it, or `haloyd init --override` to replace the "
                "config and API token (certificates and history are kept)"
            ),
        )
    text, config = render_config(api_domain)
    created = asyncio.run(ensure_network(network, docker_host))
    make_dirs(paths)
    write_private_file(paths.daemon_config, text)
    token = new_token()
    paths.env_file.unlink(missing_ok=True)  # a new setup starts from a clean token file
    write_token(paths.env_file, token)
    return InitResult(paths, token, api_url(config), network, created)
