"""Supervisor edges: a broken launcher mid-upgrade, a worker dying during a takeover.

The proxy runs its workers through a launcher script (HALOY_PROXY_LAUNCHER) that the tests
can remove or hold at a gate (a FIFO), so the overlaps happen in a fixed order.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fixtures.polling import await_until, wait_until
from tests.fixtures.proxy import BIN, ProxyProcess
from tests.proxy.http_peers import Backend, Client, route, snapshot

GATED = """#!/bin/sh
# Hold a worker at the gate while the file "gate" exists: until the test writes the FIFO.
if [ -e "{d}/gate" ]; then
    echo $$ > "{d}/waiting.tmp" && mv "{d}/waiting.tmp" "{d}/waiting"
    read _ < "{d}/fifo"
fi
exec {bin} "$@"
"""


@pytest.fixture
def launcher(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A launcher script the supervisor runs for every worker (it inherits our env)."""
    gate_dir = tmp_path / "launcher"
    gate_dir.mkdir()
    os.mkfifo(gate_dir / "fifo")
    script = gate_dir / "haloy-proxy-worker"
    script.write_text(GATED.format(d=gate_dir, bin=BIN))
    script.chmod(0o755)
    monkeypatch.setenv("HALOY_PROXY_LAUNCHER", str(script))
    return script


def _reload(proxy: ProxyProcess) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN), "reload", "--data-dir", str(proxy.data_dir)],
                          capture_output=True, text=True, timeout=120, check=False)


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found.update(int(c) for c in (task / "children").read_text().split())
    return found


async def test_missing_launcher_fails_the_takeover_and_the_next_one_gets_a_new_generation(
    proxy_factory: Callable[..., ProxyProcess], launcher: Path,
) -> None:
    proxy = proxy_factory("--no-access-log", "--supervise", https=False)
    async with Backend() as be:
        reply = await asyncio.to_thread(proxy.put_snapshot, snapshot(route("app.test", be.spec())))
        assert reply["ok"], reply
        saved = launcher.read_text()
        launcher.unlink()  # an upgrade that removed the old tree before linking the new one
        run = await asyncio.to_thread(_reload, proxy)
        assert run.returncode != 0
        assert "takeover failed" in run.stderr and "keep serving" in run.stderr, run.stderr
        c = await Client.open(proxy.http_port)
        assert (await c.request()).status == 200  # the old worker still serves
        launcher.write_text(saved)
        launcher.chmod(0o755)
        run = await asyncio.to_thread(_reload, proxy)
        assert run.returncode == 0, run.stderr
        # Every attempt takes a generation number: no socket name of the failed one is reused.
        assert "generation 2 serves" in run.stdout, run.stdout
        assert (await asyncio.to_thread(proxy.status))["supervisor"]["generation"] == 2
        c.close()
    assert proxy.stop() == 0


async def test_a_worker_dying_during_a_takeover_orphans_no_new_worker(
    proxy_factory: Callable[..., ProxyProcess], launcher: Path,
) -> None:
    gate_dir = launcher.parent
    proxy = proxy_factory("--no-access-log", "--supervise", https=False)
    assert (await asyncio.to_thread(proxy.put_snapshot, snapshot()))["ok"]
    (old,) = _children(proxy.proc.pid)
    (gate_dir / "gate").touch()
    first = asyncio.create_task(asyncio.to_thread(_reload, proxy))
    await await_until("the new worker at the gate", (gate_dir / "waiting").exists)
    os.kill(old, signal.SIGKILL)  # the old worker dies while the takeover holds the lock
    await await_until("the supervisor to see it",
                      lambda: asyncio.to_thread(lambda: "worker 0 exited" in proxy.logs()))
    (gate_dir / "gate").unlink()
    await asyncio.to_thread(_release, gate_dir)
    run = await first
    assert run.returncode == 0, run.stderr
    taken = [int(p) for p in re.findall(r"\d+", run.stdout.split("pids", 1)[1].split(")")[0])]
    assert taken == [int((gate_dir / "waiting").read_text())]
    # Waits behind the restart the dead worker queued for (asyncio locks are FIFO).
    run = await asyncio.to_thread(_reload, proxy)
    assert run.returncode == 0, run.stderr
    await await_until("the old workers to exit", lambda: asyncio.to_thread(proxy.status),
                      lambda s: s["supervisor"]["draining_workers"] == 0)
    # The first takeover's worker was replaced by the second and is gone, not orphaned.
    assert not Path(f"/proc/{taken[0]}").exists()
    assert len(_children(proxy.proc.pid)) == 1
    assert proxy.stop() == 0


async def test_reload_certs_during_a_takeover_reaches_the_new_workers(
    proxy_factory: Callable[..., ProxyProcess], launcher: Path,
) -> None:
    gate_dir = launcher.parent
    proxy = proxy_factory("--no-access-log", "--supervise")

    def loads() -> int:  # every worker logs each certificate load, at start and on reload
        return proxy.logs().count(" certificate(s) from ")

    before = loads()
    (gate_dir / "gate").touch()
    first = asyncio.create_task(asyncio.to_thread(_reload, proxy))
    await await_until("the new worker at the gate", (gate_dir / "waiting").exists)
    # haloyd renewed a certificate now: only the old worker can hear it.
    assert (await asyncio.to_thread(proxy.reload_certs))["ok"]
    assert loads() == before + 1
    (gate_dir / "gate").unlink()
    await asyncio.to_thread(_release, gate_dir)
    run = await first
    assert run.returncode == 0, run.stderr
    # The new worker loaded at its start and again for the reload it missed.
    assert loads() == before + 3, proxy.logs()
    assert proxy.stop() == 0


def _release(gate_dir: Path) -> None:
    with open(gate_dir / "fifo", "w") as fifo:
        fifo.write("go\n")


def test_sigterm_while_the_first_workers_start_stops_them_too(
    tmp_path: Path, launcher: Path,
) -> None:
    gate_dir = launcher.parent
    (gate_dir / "gate").touch()
    argv = [str(BIN), "serve", "--config-dir", str(tmp_path / "etc"), "--data-dir",
            str(tmp_path), "--http-listen", "127.0.0.1:0", "--https-listen", "off",
            "--no-access-log", "--supervise"]
    log = tmp_path / "supervisor.log"
    with open(log, "wb") as out:
        sup = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    worker = 0
    try:
        wait_until("the worker at the gate", (gate_dir / "waiting").exists)
        worker = int((gate_dir / "waiting").read_text())
        sup.send_signal(signal.SIGTERM)  # systemd stopping a proxy that is still starting
        (gate_dir / "gate").unlink()
        _release(gate_dir)
        assert sup.wait(30) == 0, log.read_text()
        assert not Path(f"/proc/{worker}").exists() or _zombie(worker), "worker orphaned"
    finally:
        if sup.poll() is None:
            sup.kill()
            sup.wait()
        if worker and Path(f"/proc/{worker}").exists() and not _zombie(worker):
            os.kill(worker, signal.SIGKILL)


def _zombie(pid: int) -> bool:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    return True
