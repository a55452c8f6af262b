"""The upgrade path end to end, outside systemd, under load: zero failed requests.

In a Debian box on its own app network: install version N, start haloy-proxy and haloyd as
their units do (same command lines, as user `haloy` with group `docker`), route a real app
container, then `upgrade-server.sh` to N.post1, restart haloyd as `systemctl restart`
would (SIGTERM, wait, start) and take over the proxy as `systemctl reload` would
(`haloy-proxy reload`), while this process sends requests through the proxy.
"""

from __future__ import annotations

import re
import shlex
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from haloy import __version__
from tests.fixtures.debian import NEXT_VERSION_SUFFIX
from tests.fixtures.docker import TEST_LABEL, docker_cli, run_app
from tests.fixtures.polling import wait_until
from tests.ops.box import DebianBox

# The first run builds the Debian image (debootstrap, 1-2 min) inside the first setup.
pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]

PROXY_PORT = 18080
NEXT_VERSION = f"{__version__}{NEXT_VERSION_SUFFIX}"
DIRS = "--config-dir /etc/haloy --data-dir /var/lib/haloy"
# The units' ExecStart lines; the proxy listens on a high port and HTTP only in the box.
PROXY_CMD = (f"/usr/local/bin/haloy-proxy serve --supervise {DIRS} "
             f"--http-listen 0.0.0.0:{PROXY_PORT} --https-listen off --no-access-log")
RELOAD_CMD = f"/usr/local/bin/haloy-proxy reload {DIRS}"
HALOYD_CMD = f"/usr/local/bin/haloyd serve {DIRS}"
READY_TIMEOUT = 90.0
POLL_S = 0.2  # each probe is a `docker exec` or a request: a few a second is plenty
AFTER_RESTART_REQUESTS = 200


def start_as_unit(box: DebianBox, command: str, log: str) -> int:
    """Start `command` as user haloy with its groups, as systemd's User= would; its pid."""
    # setpriv execs (runuser forks), so $! is the service's own pid.
    script = (f"setpriv --reuid haloy --regid haloy --init-groups {command} "
              f">{log} 2>&1 & echo $!")
    return int(box.ok("bash", "-c", script).strip())


class Load:
    """Sequential requests through the proxy on a thread, counting failures, until stopped."""

    def __init__(self, url: str, host: str) -> None:
        self.url, self.host = url, host
        self.ok = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=10.0, trust_env=False) as client:
            while not self._stop.is_set():
                try:
                    resp = client.get(self.url, headers={"Host": self.host})
                    if resp.status_code == 200:
                        self.ok += 1
                    else:
                        self.failures.append(f"HTTP {resp.status_code}")
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


@pytest.fixture
def live_box(
    debian_image: str, haloy_wheelhouse: Path, test_image: str
) -> Iterator[tuple[DebianBox, str, int, int]]:
    """A box on its own network with N installed, proxy + haloyd running, one app routed.

    Yields the box, the app's URL through the proxy, haloyd's pid and the proxy's pid.
    """
    box = DebianBox(debian_image, haloy_wheelhouse, on_network=True)
    cleanup = f"ops-{box.network}"
    try:
        # haloyd reaches the host engine's socket through its group: give the box's `docker`
        # group the socket's gid, as the distribution package does on a real server.
        gid = box.ok("stat", "-c", "%g", "/var/run/docker.sock").strip()
        box.ok("groupadd", "--system", "--gid", gid, "docker")
        wheel = f"/wheels/{next(haloy_wheelhouse.glob('haloy-*.whl')).name}"
        box.ok("bash", "/src/scripts/install-server.sh", "--skip-docker", "--no-start",
               "--wheel", wheel, "--find-links", "/wheels/deps")
        # Health checks every second instead of 15 s: the route comes up quickly.
        box.ok("setpriv", "--reuid", "haloy", "--regid", "haloy", "--init-groups",
               *shlex.split(f"/usr/local/bin/haloyd config set health_monitor.interval 1s {DIRS}"))
        run_app(f"{test_image}:v1", box.network, cleanup)
        proxy = start_as_unit(box, PROXY_CMD, "/tmp/haloy-proxy.log")
        haloyd = start_as_unit(box, HALOYD_CMD, "/tmp/haloyd.log")
        url = f"http://{box.address()}:{PROXY_PORT}/"
        wait_until("the app to answer through the proxy", lambda: _answers(url),
                   timeout=READY_TIMEOUT, interval=POLL_S)
        yield box, url, haloyd, proxy
    finally:
        ids = docker_cli("ps", "-aq", "--filter", f"label={TEST_LABEL}={cleanup}", check=False)
        if ids:
            docker_cli("rm", "-f", *ids.split(), check=False)
        box.close()


def _answers(url: str) -> bool:
    try:
        resp = httpx.get(url, headers={"Host": "web.test"}, timeout=2.0, trust_env=False)
    except httpx.HTTPError:
        return False
    return resp.status_code == 200 and "v1" in resp.text


def test_upgrade_restarts_haloyd_and_takes_over_the_proxy_without_failed_requests(
    live_box: tuple[DebianBox, str, int, int], next_haloy_wheel: Path
) -> None:
    box, url, old_pid, proxy_pid = live_box
    token = box.read("/etc/haloy/.env")
    with Load(url, "web.test") as load:
        wait_until("load to flow", lambda: load.ok >= 20, timeout=READY_TIMEOUT, interval=POLL_S)
        run = box.script("upgrade-server.sh", "--wheel", f"/wheels/next/{next_haloy_wheel.name}",
                         "--find-links", "/wheels/deps")
        assert run.returncode == 0, run.stderr
        assert run.stdout.startswith("restart needed: haloyd\n"), run.stdout
        assert "haloy-proxy reload" in run.stdout
        assert f"haloy {__version__} -> {NEXT_VERSION}" in run.stderr
        assert "snapshot schema unchanged" in run.stderr
        # What `systemctl restart haloyd` does: SIGTERM, wait for the exit, start again.
        box.ok("bash", "-c", f"kill -TERM {old_pid}")
        wait_until("the old haloyd to exit",
                   lambda: box.run("bash", "-c", f"kill -0 {old_pid}").returncode == 1,
                   timeout=READY_TIMEOUT, interval=POLL_S)
        new_pid = start_as_unit(box, HALOYD_CMD, "/tmp/haloyd-new.log")
        wait_until("the new haloyd to serve",
                   lambda: "haloyd serving" in box.read("/tmp/haloyd-new.log"),
                   timeout=READY_TIMEOUT, interval=POLL_S)
        during = load.ok
        wait_until("traffic after the restart", lambda: load.ok >= during + AFTER_RESTART_REQUESTS,
                   timeout=READY_TIMEOUT, interval=POLL_S)
        # What `systemctl reload haloy-proxy` does (ExecReload), as the unit's user.
        reload = box.run("setpriv", "--reuid", "haloy", "--regid", "haloy", "--init-groups",
                         *shlex.split(RELOAD_CMD))
        assert reload.returncode == 0, reload.stderr
        assert "generation 1 serves" in reload.stdout, reload.stdout
        during = load.ok
        wait_until("traffic after the takeover", lambda: load.ok >= during + AFTER_RESTART_REQUESTS,
                   timeout=READY_TIMEOUT, interval=POLL_S)
    assert load.failures == [], f"{len(load.failures)} failed of {load.ok}: {load.failures[:5]}"
    print(f"upgrade under load: {load.ok} requests, 0 failed")
    facts = box.facts("/opt/haloy/current", f"/opt/haloy/{__version__}")
    assert facts["stat"]["/opt/haloy/current"]["link"] == NEXT_VERSION
    assert facts["stat"][f"/opt/haloy/{__version__}"]["dir"], "the old version must stay"
    assert box.read("/etc/haloy/.env") == token
    # The shebang of /usr/local/bin/haloyd now names the new venv's python.
    new_cmdline = box.read(f"/proc/{new_pid}/cmdline")
    assert re.match(rf"/opt/haloy/{re.escape(NEXT_VERSION)}/bin/python", new_cmdline), new_cmdline
    # The proxy kept its pid (the supervisor); its workers now run the new version.
    wait_until("only new-version proxy workers (the old ones drained)",
               lambda: _workers_run(box, proxy_pid, NEXT_VERSION),
               timeout=READY_TIMEOUT, interval=POLL_S)


def _workers_run(box: DebianBox, supervisor: int, version: str) -> bool:
    """True when the supervisor's children all run `version`'s interpreter."""
    cmdlines = box.children(supervisor).values()
    prefix = f"/opt/haloy/{version}/bin/python"
    return bool(cmdlines) and all(c.startswith(prefix) for c in cmdlines)
