"""Builds a target's image with the local `docker` per its build_config (an I/O shell).

`build_command` is pure (tested in memory); `build_image` runs it and turns a missing or stopped
Docker, or a failed build, into a RuntimeError_ that shows the tail of the build output.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from haloy.config.app import AppTarget
from haloy.errors import ConfigError, RuntimeError_

# Lines of build output shown when a build fails; the error is nearly always at the end.
BUILD_TAIL_LINES = 30
# `docker version` answers in milliseconds; an engine that does not is as good as stopped.
DOCKER_PING_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class BuildPlan:
    """One `docker build`: the image ref, its context and the full argument list."""

    ref: str
    context: Path
    args: tuple[str, ...]


def build_command(
    target: AppTarget, config_dir: Path, build_args: Mapping[str, str]
) -> BuildPlan:
    """The docker build command for a target (context relative to the config file's dir)."""
    bc = target.image.build_config
    if not target.image.build or bc is None:
        raise ConfigError(f"target {target.target or target.name} does not build its image")
    context = (config_dir / (bc.context or ".")).resolve()
    dockerfile = context / (bc.dockerfile or "Dockerfile")
    if not context.is_dir():
        raise ConfigError(
            f"build context {context} is not a directory",
            hint="build_config.context is relative to the directory of haloy.yaml",
        )
    if not dockerfile.is_file():
        raise ConfigError(
            f"no Dockerfile at {dockerfile}",
            hint="build_config.dockerfile is relative to build_config.context",
        )
    args = ["docker", "build", "--tag", target.image.ref, "--file", str(dockerfile)]
    if bc.platform:
        args += ["--platform", bc.platform]
    for name, value in build_args.items():
        args += ["--build-arg", f"{name}={value}"]
    args.append(str(context))
    return BuildPlan(target.image.ref, context, tuple(args))


def build_key(plan: BuildPlan) -> tuple[str, ...]:
    """Targets whose builds are identical share one build (each distinct image built once)."""
    return plan.args


async def _run(args: tuple[str, ...], env: Mapping[str, str]) -> tuple[int, str]:
    try:
        proc = await asyncio.create_subprocess_exec(
            *args, env=dict(env), stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
    except FileNotFoundError as exc:
        raise RuntimeError_(
            "the `docker` command is not installed on this machine",
            hint="install Docker (https://docs.docker.com/engine/install/) to build images",
        ) from exc
    out, _ = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode("utf-8", "replace")


async def check_docker(env: Mapping[str, str]) -> str:
    """The local engine's version; RuntimeError_ if docker is missing or not running."""
    try:
        code, out = await asyncio.wait_for(
            _run(("docker", "version", "--format", "{{.Server.Version}}"), env),
            DOCKER_PING_TIMEOUT_S,
        )
    except TimeoutError as exc:
        raise RuntimeError_("the local Docker engine does not answer",
                            hint="restart Docker, or check DOCKER_HOST") from exc
    if code != 0:
        raise RuntimeError_(
            f"Docker is not running locally: {tail(out, 3)}",
            hint="start it (`sudo systemctl start docker` or Docker Desktop), or set DOCKER_HOST",
        )
    return out.strip()


async def local_engine_id(env: Mapping[str, str]) -> str | None:
    """The local Docker engine's `ID|DockerRootDir` (as haloyd reports it), or None."""
    try:
        code, out = await asyncio.wait_for(
            _run(("docker", "info", "--format", "{{.ID}}|{{.DockerRootDir}}"), env),
            DOCKER_PING_TIMEOUT_S,
        )
    except (TimeoutError, RuntimeError_):
        return None
    return out.strip() or None if code == 0 else None


def tail(text: str, lines: int = BUILD_TAIL_LINES) -> str:
    """The last `lines` non-empty lines of `text`."""
    kept = [line for line in text.splitlines() if line.strip()]
    return "\n".join(kept[-lines:])


def build_environ(env: Mapping[str, str]) -> dict[str, str]:
    """The environment for docker build: the user's, with BuildKit off unless they chose."""
    out = dict(env)
    # The classic builder works with every engine (no buildx plugin needed); users opt in.
    out.setdefault("DOCKER_BUILDKIT", "0")
    return out


async def build_image(plan: BuildPlan, env: Mapping[str, str] | None = None) -> str:
    """Run the build; return its output. A failed build raises with the output's tail."""
    run_env = build_environ(os.environ if env is None else env)
    code, out = await _run(plan.args, run_env)
    if code != 0:
        raise RuntimeError_(
            f"docker build of {plan.ref} failed (exit {code}):\n{tail(out)}",
            hint=f"run the build by hand to see everything: {' '.join(plan.args)}",
        )
    return out


def registry_host(ref: str) -> str:
    """The registry a ref names: its first path part when that looks like a host."""
    first, sep, _ = ref.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


async def push_image(
    ref: str,
    env: Mapping[str, str],
    server: str | None = None,
    username: str | None = None,
    password: str | None = None,
) -> None:
    """`docker push` (after `docker login` with the config's credentials, if any)."""
    run_env = dict(env)
    with tempfile.TemporaryDirectory(prefix="haloy-docker-") as tmp:
        if username and password:
            # A private DOCKER_CONFIG: the credentials never land in the user's ~/.docker.
            run_env["DOCKER_CONFIG"] = tmp
            host = server or registry_host(ref)
            proc = await asyncio.create_subprocess_exec(
                "docker", "login", "--username", username, "--password-stdin", host,
                env=run_env, stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            )
            out, _ = await proc.communicate(password.encode())
            if proc.returncode != 0:
                raise RuntimeError_(
                    f"docker login to {host} failed: {tail(out.decode('utf-8', 'replace'), 5)}",
                    hint="check image.registry username and password in haloy.yaml",
                )
        code, text = await _run(("docker", "push", ref), run_env)
    if code != 0:
        raise RuntimeError_(
            f"docker push {ref} failed (exit {code}):\n{tail(text, 10)}",
            hint="check the registry address and credentials (image.registry in haloy.yaml)",
        )
