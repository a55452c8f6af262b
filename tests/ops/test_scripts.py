"""The server scripts parse, document their options, and reject unknown ones (no container)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.debian import REPO_ROOT

SCRIPTS = ("install-server.sh", "upgrade-server.sh", "uninstall-server.sh")
TEMPLATES = REPO_ROOT / "deploy" / "systemd"


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", *argv], capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_parses_and_has_help(script: str) -> None:
    path = str(REPO_ROOT / "scripts" / script)
    assert run("-n", path).returncode == 0
    helped = run(path, "--help")
    assert helped.returncode == 0 and "Options:" in helped.stdout, helped.stderr
    wrong = run(path, "--no-such-option")
    assert wrong.returncode == 2 and "unknown option: --no-such-option" in wrong.stderr


@pytest.mark.parametrize("unit", ["haloy-proxy.service", "haloyd.service"])
def test_templates_use_only_known_placeholders(unit: str) -> None:
    text = (TEMPLATES / unit).read_text()
    placeholders = set(re.findall(r"@([A-Z_]+)@", text))
    assert "@" not in re.sub(r"@[A-Z_]+@|SystemCallFilter=.*", "", text)
    assert placeholders == {"BIN_DIR", "CONFIG_DIR", "DATA_DIR", "USER"}


def test_proxy_unit_cannot_reach_docker_or_the_token() -> None:
    lines = (TEMPLATES / "haloy-proxy.service").read_text().splitlines()
    hidden = next(line for line in lines if line.startswith("InaccessiblePaths="))
    for path in ("-@CONFIG_DIR@", "-@DATA_DIR@/db", "-/run/docker.sock"):
        assert path in hidden.split("=", 1)[1].split()
    assert "SupplementaryGroups=docker" not in lines


def test_template_dir_is_where_install_looks() -> None:
    script = (REPO_ROOT / "scripts" / "install-server.sh").read_text()
    assert 'UNIT_SRC="$SCRIPT_DIR/../deploy/systemd"' in script
    assert Path(TEMPLATES / "haloyd.service").is_file()
