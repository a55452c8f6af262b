"""scripts/install-server.sh in a real Debian bookworm container, checked for what it made."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from haloy import __version__
from tests.fixtures.peers import peer_missing
from tests.ops.box import DebianBox

# The first run builds the Debian image (debootstrap, 1-2 min) inside the first setup.
pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]

INSTALL_ARGS = ("--skip-docker", "--no-start", "--find-links", "/wheels/deps")
TOKEN_RE = re.compile(r"haloy server add (\S+) ([0-9a-f]{64})$", re.M)
UNITS = ("haloy-proxy.service", "haloyd.service")
# Exposure levels measured for docs/operations.md are 1.4 (proxy) and 1.3 (haloyd); a unit
# that loses its sandboxing climbs well past this.
MAX_EXPOSURE = 2.0


def wheel_arg(wheelhouse: Path) -> str:
    """The in-box path of the checkout's wheel."""
    return f"/wheels/{next(wheelhouse.glob('haloy-*.whl')).name}"


@pytest.fixture(scope="module")
def installed(
    debian_image: str, haloy_wheelhouse: Path
) -> Iterator[tuple[DebianBox, subprocess.CompletedProcess[str]]]:
    """A Debian box where install-server.sh has run once, and that run's result."""
    b = DebianBox(debian_image, haloy_wheelhouse)
    try:
        wheel = wheel_arg(haloy_wheelhouse)
        yield b, b.script("install-server.sh", *INSTALL_ARGS, "--wheel", wheel)
    finally:
        b.close()


@pytest.fixture(scope="module")
def box(installed: tuple[DebianBox, subprocess.CompletedProcess[str]]) -> DebianBox:
    """The box after the first install."""
    return installed[0]


def test_install_prints_url_and_token(
    installed: tuple[DebianBox, subprocess.CompletedProcess[str]],
) -> None:
    box, run = installed
    assert run.returncode == 0, run.stderr
    match = TOKEN_RE.search(run.stdout)
    assert match, run.stdout
    assert match.group(1) == "http://127.0.0.1:9922"
    assert f"HALOY_API_TOKEN={match.group(2)}" in box.read("/etc/haloy/.env")
    assert "systemd is not the init system" in run.stderr
    assert "not started" in run.stdout


def test_user_dirs_and_modes(box: DebianBox) -> None:
    paths = ("/etc/haloy", "/etc/haloy/.env", "/etc/haloy/haloyd.yaml", "/var/lib/haloy",
             "/var/lib/haloy/certs", "/var/lib/haloy/db", "/var/lib/haloy/proxy")
    facts = box.facts(*paths)
    user = facts["user"]
    assert user is not None, "no haloy user"
    assert user["uid"] < 1000, "haloy must be a system user"
    assert user["shell"] == "/usr/sbin/nologin"
    assert "docker" in user["groups"]
    for path in paths:
        st = facts["stat"][path]
        assert st is not None, f"{path} missing"
        assert (st["user"], st["group"]) == ("haloy", "haloy"), path
        assert st["mode"] == (0o700 if st["dir"] else 0o600), f"{path}: {st['mode']:o}"


def test_venv_and_command_links(box: DebianBox) -> None:
    facts = box.facts("/opt/haloy/current", "/usr/local/bin/haloyd", "/usr/local/bin/haloy-proxy")
    assert facts["stat"]["/opt/haloy/current"]["link"] == __version__
    assert facts["stat"]["/usr/local/bin/haloyd"]["link"] == "/opt/haloy/current/bin/haloyd"
    assert box.ok("/usr/local/bin/haloyd", "--version").strip() == f"haloyd, version {__version__}"
    out = box.ok("/usr/local/bin/haloy-proxy", "--version").strip()
    assert out == f"haloy-proxy, version {__version__}"


def test_units_written_from_templates(box: DebianBox) -> None:
    for unit in UNITS:
        text = box.read(f"/etc/systemd/system/{unit}")
        assert "@" not in text.replace("@system-service", "").replace("@privileged", "").replace(
            "@resources", ""
        ), f"unrendered placeholder in {unit}"
        for directive in ("NoNewPrivileges=true", "PrivateTmp=true", "ProtectHome=true",
                          "ProtectSystem=strict", "ProtectKernelTunables=true",
                          "ProtectKernelModules=true", "ProtectControlGroups=true",
                          "RestrictSUIDSGID=true", "Restart=always", "User=haloy"):
            assert directive in text.splitlines(), f"{unit}: {directive}"
    proxy = box.read("/etc/systemd/system/haloy-proxy.service").splitlines()
    assert "CapabilityBoundingSet=CAP_NET_BIND_SERVICE" in proxy
    assert "ReadWritePaths=/var/lib/haloy/proxy" in proxy
    assert ("ExecStart=/usr/local/bin/haloy-proxy serve --supervise --config-dir /etc/haloy "
            "--data-dir /var/lib/haloy --http-listen 0.0.0.0:80 "
            "--https-listen 0.0.0.0:443") in proxy
    assert ("ExecReload=/usr/local/bin/haloy-proxy reload --config-dir /etc/haloy --data-dir "
            "/var/lib/haloy") in proxy
    haloyd = box.read("/etc/systemd/system/haloyd.service").splitlines()
    assert "CapabilityBoundingSet=" in haloyd
    assert "SupplementaryGroups=docker" in haloyd
    assert "ReadOnlyPaths=/etc/haloy" in haloyd
    assert "ReadWritePaths=/var/lib/haloy" in haloyd


def test_rerun_is_safe(box: DebianBox, haloy_wheelhouse: Path) -> None:
    before = box.read("/etc/haloy/.env")
    run = box.script("install-server.sh", *INSTALL_ARGS, "--wheel", wheel_arg(haloy_wheelhouse),
                     "--api-domain", "api.example.com")
    assert run.returncode == 0, run.stderr
    assert "already initialised" in run.stderr
    assert box.read("/etc/haloy/.env") == before, "a re-run must keep the API token"
    match = TOKEN_RE.search(run.stdout)
    assert match and match.group(1) == "https://api.example.com", run.stdout
    facts = box.facts("/etc/haloy/haloyd.yaml")
    assert facts["stat"]["/etc/haloy/haloyd.yaml"]["user"] == "haloy"


@pytest.fixture(scope="module")
def unit_root(box: DebianBox, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root dir with the box's units and commands plus this host's systemd units."""
    if shutil.which("systemd-analyze") is None:
        peer_missing("systemd-analyze is not installed (apt-get install systemd)")
    host_units = Path("/usr/lib/systemd/system")
    if not (host_units / "sysinit.target").is_file():
        peer_missing("this host has no systemd unit files in /usr/lib/systemd/system")
    root = tmp_path_factory.mktemp("unit-root")
    box.export(root, "etc/systemd/system", "usr/local/bin", "opt/haloy/current",
               f"opt/haloy/{__version__}/bin")
    # verify resolves the targets the units name (multi-user.target, network-online.target).
    shutil.copytree(host_units, root / "usr/lib/systemd/system", symlinks=True)
    return root


def test_systemd_analyze_verify(unit_root: Path) -> None:
    proc = subprocess.run(["systemd-analyze", "verify", f"--root={unit_root}", *UNITS],
                          capture_output=True, text=True, timeout=60)
    # Unknown or misspelled directives are only warnings, so any output is a failure too.
    assert proc.returncode == 0 and not proc.stderr.strip(), proc.stderr


@pytest.mark.parametrize("unit", UNITS)
def test_security_exposure(unit_root: Path, unit: str) -> None:
    proc = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", f"--root={unit_root}", unit],
        capture_output=True, text=True, timeout=60,
    )
    match = re.search(r"Overall exposure level for \S+: ([0-9.]+)", proc.stdout)
    assert match, proc.stdout + proc.stderr
    assert float(match.group(1)) <= MAX_EXPOSURE, proc.stdout


# Uninstall changes the box, so it runs last. (Upgrades: test_upgrade_live.py.)
def test_uninstall_keeps_config_until_purge(box: DebianBox) -> None:
    run = box.script("uninstall-server.sh")
    assert run.returncode == 0, run.stderr
    assert "docker rm -f $(docker ps -aq --filter label=dev.haloy.appName)" in run.stdout
    gone = ("/opt/haloy", "/usr/local/bin/haloyd", "/usr/local/bin/haloy-proxy",
            *(f"/etc/systemd/system/{u}" for u in UNITS))
    facts = box.facts(*gone, "/etc/haloy/.env", "/var/lib/haloy/certs")
    assert [p for p in gone if facts["stat"][p] is not None] == []
    assert facts["stat"]["/etc/haloy/.env"] is not None
    assert facts["user"] is not None

    run = box.script("uninstall-server.sh", "--purge")
    assert run.returncode == 0, run.stderr
    facts = box.facts("/etc/haloy", "/var/lib/haloy")
    assert facts["stat"] == {"/etc/haloy": None, "/var/lib/haloy": None}
    assert facts["user"] is None
