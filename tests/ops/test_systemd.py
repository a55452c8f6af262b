"""The units under a real systemd (PID 1 in a Debian box): install starts them, sandboxed.

install-server.sh runs with starting enabled; then the tests read what systemd made of the
units from /proc (capabilities, no-new-privileges, seccomp, groups), check the proxy answers
on 80, upgrade through systemctl (haloyd restarts, the proxy keeps its pid), and uninstall.

In an unprivileged container systemd cannot set up mount namespaces, so ProtectSystem=,
ReadWritePaths= and InaccessiblePaths= are not enforced here; `systemd-analyze` checks them
statically in test_install.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from haloy import __version__
from tests.fixtures.debian import NEXT_VERSION_SUFFIX
from tests.fixtures.peers import peer_missing
from tests.fixtures.polling import wait_until
from tests.ops.box import DebianBox

# The first run builds the Debian image (debootstrap, 1-3 min) inside the first setup.
pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]

BOOT_TIMEOUT = 60.0
POLL_S = 0.2  # each probe is a `docker exec`: a few a second is plenty
CAP_NET_BIND_SERVICE = 1 << 10  # include/uapi/linux/capability.h
SECCOMP_FILTER = "2"  # /proc/<pid>/status "Seccomp:" for a filter in force


def main_pid(box: DebianBox, unit: str) -> int:
    """The unit's main pid as systemd reports it (0 when not running)."""
    return int(box.ok("systemctl", "show", "-p", "MainPID", "--value", unit).strip())


def proc_status(box: DebianBox, pid: int) -> dict[str, str]:
    """/proc/<pid>/status as a dict."""
    lines = box.read(f"/proc/{pid}/status").splitlines()
    return {k: v.strip() for k, _, v in (line.partition(":") for line in lines)}


@pytest.fixture(scope="module")
def box(debian_systemd_image: str, haloy_wheelhouse: Path) -> Iterator[DebianBox]:
    """A systemd box where install-server.sh installed and started both units."""
    b = DebianBox(debian_systemd_image, haloy_wheelhouse, systemd=True)
    try:
        try:
            wait_until("systemd to boot",
                       lambda: b.run("systemctl", "is-system-running").stdout.strip(),
                       lambda state: state in ("running", "degraded"),
                       timeout=BOOT_TIMEOUT, interval=POLL_S)
        except AssertionError as exc:
            peer_missing(f"systemd does not boot in a container here ({exc})")
        gid = b.ok("stat", "-c", "%g", "/var/run/docker.sock").strip()
        b.ok("groupadd", "--system", "--gid", gid, "docker")
        # Services do not inherit the container's environment: point haloyd at this box's
        # network with a drop-in, made before the unit exists, as an admin would.
        b.ok("mkdir", "-p", "/etc/systemd/system/haloyd.service.d")
        b.ok("bash", "-c", "printf '[Service]\\nEnvironment=HALOY_NETWORK_NAME=%s\\n' "
             f"{b.network} >/etc/systemd/system/haloyd.service.d/test.conf")
        wheel = f"/wheels/{next(haloy_wheelhouse.glob('haloy-*.whl')).name}"
        run = b.script("install-server.sh", "--skip-docker", "--wheel", wheel,
                       "--find-links", "/wheels/deps")
        assert run.returncode == 0, run.stderr + b.run("journalctl", "--no-pager").stdout[-3000:]
        assert "started haloy-proxy, then haloyd" in run.stdout
        yield b
    finally:
        b.close()


def test_units_enabled_and_active(box: DebianBox) -> None:
    units = ("haloy-proxy.service", "haloyd.service")
    assert box.ok("systemctl", "is-enabled", *units).split() == ["enabled", "enabled"]
    assert box.ok("systemctl", "is-active", *units).split() == ["active", "active"]


def test_proxy_sandbox_in_force(box: DebianBox) -> None:
    status = proc_status(box, main_pid(box, "haloy-proxy.service"))
    uid = box.ok("id", "-u", "haloy").strip()
    assert status["Uid"].split()[0] == uid
    for field in ("CapEff", "CapPrm", "CapAmb", "CapBnd"):
        assert int(status[field], 16) == CAP_NET_BIND_SERVICE, (field, status[field])
    assert status["NoNewPrivs"] == "1"
    assert status["Seccomp"] == SECCOMP_FILTER


def test_haloyd_sandbox_in_force(box: DebianBox) -> None:
    status = proc_status(box, main_pid(box, "haloyd.service"))
    for field in ("CapEff", "CapPrm", "CapAmb", "CapBnd"):
        assert int(status[field], 16) == 0, (field, status[field])
    assert status["NoNewPrivs"] == "1"
    assert status["Seccomp"] == SECCOMP_FILTER
    docker_gid = box.ok("getent", "group", "docker").split(":")[2]
    assert docker_gid in status["Groups"].split()


def test_proxy_serves_port_80_and_haloyd_reaches_docker(box: DebianBox) -> None:
    probe = ("import socket; s = socket.create_connection(('127.0.0.1', 80), timeout=5); "
             "s.sendall(b'GET / HTTP/1.1\\r\\nHost: nowhere.test\\r\\n"
             "Connection: close\\r\\n\\r\\n'); print(s.recv(64).split(b' ')[0].decode())")
    wait_until("port 80", lambda: box.run("python3", "-c", probe).stdout.startswith("HTTP/1.1"),
               timeout=BOOT_TIMEOUT, interval=POLL_S)
    wait_until("haloyd to serve", lambda: "haloyd serving" in box.ok(
        "journalctl", "--no-pager", "-u", "haloyd.service"), timeout=BOOT_TIMEOUT, interval=POLL_S)


def test_upgrade_restarts_haloyd_and_takes_over_the_proxy(
    box: DebianBox, next_haloy_wheel: Path
) -> None:
    proxy_before = main_pid(box, "haloy-proxy.service")
    haloyd_before = main_pid(box, "haloyd.service")
    run = box.script("upgrade-server.sh", "--wheel", f"/wheels/next/{next_haloy_wheel.name}",
                     "--find-links", "/wheels/deps")
    assert run.returncode == 0, run.stderr
    new_version = __version__ + NEXT_VERSION_SUFFIX
    assert run.stdout.strip().endswith(f"upgraded to haloy {new_version}"), run.stdout
    # The supervisor keeps its pid (and the ports); its workers now run the new version.
    assert main_pid(box, "haloy-proxy.service") == proxy_before
    workers = box.children(proxy_before)
    assert workers, "the proxy supervisor has no workers"
    # `systemctl reload` returned once the new workers served; the old ones may still drain.
    assert any(c.startswith(f"/opt/haloy/{new_version}/") for c in workers.values()), workers
    haloyd_after = main_pid(box, "haloyd.service")
    assert haloyd_after not in (0, haloyd_before)
    assert box.read(f"/proc/{haloyd_after}/cmdline").startswith(f"/opt/haloy/{new_version}/")


def test_uninstall_stops_and_removes_the_units(box: DebianBox) -> None:
    run = box.script("uninstall-server.sh")
    assert run.returncode == 0, run.stderr
    states = box.run("systemctl", "is-active", "haloy-proxy.service", "haloyd.service")
    assert states.stdout.split() == ["inactive", "inactive"]
    assert box.run("test", "-e", "/etc/systemd/system/haloyd.service").returncode == 1
