"""Helpers for running the real `haloyd` console script against a temp server layout."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

from haloy.daemon.main import main
from tests.fixtures.docker import docker_cli
from tests.fixtures.haloyd_server import haloyd_env

BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class HaloydEnv:
    """A temp config/data dir pair and a network name of this test's own."""

    config_dir: Path
    data_dir: Path
    network: str
    env: dict[str, str]

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        """Run `haloyd ARGS` in this process (fast), through the same error boundary."""
        out, err = io.StringIO(), io.StringIO()
        code = 0
        with (
            mock.patch.dict(os.environ, {**self.env, **env}, clear=True),
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
        ):
            try:
                main(list(args))
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
        return subprocess.CompletedProcess(["haloyd", *args], code, out.getvalue(), err.getvalue())

    def run_script(self, *args: str, umask: str = "022") -> subprocess.CompletedProcess[str]:
        """Run the installed `haloyd` console script as a subprocess under `umask`."""
        return subprocess.run(
            ["sh", "-c", f'umask {umask} && exec "$0" "$@"', str(BIN / "haloyd"), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def network_exists(self) -> bool:
        """Ask the real engine (through the docker CLI) whether the network exists."""
        names = docker_cli("network", "ls", "--format", "{{.Name}}").split()
        return self.network in names


def make_env(tmp_path: Path) -> HaloydEnv:
    """A layout under tmp_path; HALOY_* from the outer environment do not leak in."""
    config_dir, data_dir = tmp_path / "etc", tmp_path / "var"
    network = f"haloy-init-{uuid.uuid4().hex[:10]}"
    env = haloyd_env()
    env.update(
        HALOY_CONFIG_DIR=str(config_dir),
        HALOY_DATA_DIR=str(data_dir),
        HALOY_NETWORK_NAME=network,
    )
    return HaloydEnv(config_dir, data_dir, network, env)


def remove_network(name: str) -> None:
    """Teardown: the network name is unique to the test, so the test created it."""
    docker_cli("network", "rm", name, check=False)
