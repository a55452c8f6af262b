"""`haloyd verify`: one pass/warn/fail result per check of a server's set-up."""

from __future__ import annotations

import asyncio
import enum
import stat
from dataclasses import dataclass
from pathlib import Path

from haloy.api_probe import listen_to_base_url, probe_health
from haloy.config.daemon import DaemonConfig, load_daemon_config
from haloy.config.paths import Paths
from haloy.daemon.api_token import TOKEN_ENV, read_token
from haloy.daemon.init import server_dirs
from haloy.errors import HaloyError
from haloy.runtime.docker import DockerRuntime

# A loopback API either answers at once or is not running; no reason to wait long.
API_PROBE_TIMEOUT = 2.0


class Status(enum.Enum):
    """Outcome of one check; only FAIL makes `haloyd verify` exit non-zero."""

    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True)
class Check:
    """One line of the verify report."""

    name: str
    status: Status
    detail: str


def check_dir(path: Path) -> Check:
    """The dir exists and only its owner may enter it."""
    name = f"dir {path}"
    if not path.is_dir():
        return Check(name, Status.FAIL, "missing (run `haloyd init`)")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        return Check(name, Status.FAIL, f"mode {mode:04o}, want 0700 (chmod 700 {path})")
    return Check(name, Status.PASS, f"mode {mode:04o}")


def check_env_file(env_file: Path) -> Check:
    """The token file is private and holds a well-formed token."""
    name = f"token {env_file}"
    if not env_file.is_file():
        return Check(name, Status.FAIL, "missing (run `haloyd config generate-token`)")
    mode = stat.S_IMODE(env_file.stat().st_mode)
    if mode & 0o077:
        return Check(name, Status.FAIL, f"mode {mode:04o}, want 0600 (chmod 600 {env_file})")
    try:
        read_token(env_file)
    except HaloyError as err:
        return Check(name, Status.FAIL, err.message)
    return Check(name, Status.PASS, f"{TOKEN_ENV} set, mode 0600")


def check_config(config_file: Path) -> tuple[Check, DaemonConfig | None]:
    """haloyd.yaml parses and validates."""
    name = f"config {config_file}"
    if not config_file.is_file():
        return Check(name, Status.FAIL, "missing (run `haloyd init`)"), None
    try:
        config = load_daemon_config(config_file)
    except HaloyError as err:
        problems = getattr(err, "problems", ())
        detail = "; ".join((err.message, *problems))
        return Check(name, Status.FAIL, detail), None
    return Check(name, Status.PASS, "valid"), config


async def check_docker(network: str, docker_host: str | None) -> list[Check]:
    """The engine answers, and the app network exists."""
    try:
        runtime = await DockerRuntime.connect(docker_host)
    except HaloyError as err:
        return [
            Check("docker", Status.FAIL, err.message),
            Check(f"network {network}", Status.FAIL, "not checked: docker unreachable"),
        ]
    try:
        checks = [Check("docker", Status.PASS, f"engine answers at {runtime.docker_host}")]
        try:
            exists = await runtime.network_exists(network)
        except HaloyError as err:
            return [*checks, Check(f"network {network}", Status.FAIL, err.message)]
        if exists:
            checks.append(Check(f"network {network}", Status.PASS, "exists"))
        else:
            checks.append(Check(f"network {network}", Status.FAIL, "missing (run `haloyd init`)"))
        return checks
    finally:
        await runtime.close()


def check_api(config: DaemonConfig | None, require_api: bool) -> Check:
    """The API answers /health; not running is a warning unless `require_api`."""
    if config is None:
        return Check("api", Status.FAIL if require_api else Status.WARN, "no valid config")
    probe = probe_health(listen_to_base_url(config.api.listen), API_PROBE_TIMEOUT, trust_env=False)
    name = f"api {probe.url}"
    if probe.healthy:
        return Check(name, Status.PASS, probe.detail)
    if not probe.reachable:
        status = Status.FAIL if require_api else Status.WARN
        return Check(name, status, f"not running ({probe.detail})")
    return Check(name, Status.FAIL, f"unhealthy: {probe.detail}")


def run_checks(
    paths: Paths,
    *,
    network: str,
    docker_host: str | None,
    require_api: bool,
    ops: bool | None = None,
) -> list[Check]:
    """Every check, in the order a person would fix them.

    `ops` adds the installed-server checks (units, port owners, API domain, DNS); None means
    "when systemd units are installed here".
    """
    checks = [check_dir(d) for d in server_dirs(paths)]
    checks.append(check_env_file(paths.env_file))
    config_check, config = check_config(paths.daemon_config)
    checks.append(config_check)
    checks.extend(asyncio.run(check_docker(network, docker_host)))
    checks.append(check_api(config, require_api))
    if ops is None:
        # Imported here: verify_ops imports this module for Check and Status.
        from haloy.daemon.verify_ops import installed

        ops = installed()
    if ops:
        checks.extend(_ops_checks(config))
    return checks


def _ops_checks(config: DaemonConfig | None) -> list[Check]:
    """The installed-server checks, on the ports haloyd.yaml gives the proxy."""
    from haloy.daemon import verify_ops

    if config is None:
        return verify_ops.run_ops_checks(None)
    http = verify_ops.listen_port(config.proxy.http_listen)
    https = verify_ops.listen_port(config.proxy.https_listen)
    ports = [p for p in (http, https) if p is not None]
    return verify_ops.run_ops_checks(config.api.domain, ports=ports, https_port=https or 443)
