"""`--workers N`: a supervisor that runs N worker processes on the same ports (SO_REUSEPORT).

The supervisor owns the public control socket and fans every request out to the workers'
private sockets (`control.w<i>.sock`), so each worker gets every snapshot; status sums the
per-backend counters. A worker that dies is restarted and given the last snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from typing import Any

from haloy.config.paths import Paths
from haloy.proxy.control import ControlServer
from haloy.proxy.control_client import send_control

log = logging.getLogger("haloy.proxy.workers")


def _worker_argv(i: int, paths: Paths) -> list[str]:
    argv = [a for a in sys.argv[1:]]
    skip = False
    out = []
    for a in argv:
        if skip:
            skip = False
            continue
        if a == "--workers":
            skip = True
            continue
        if a.startswith("--workers="):
            continue
        out.append(a)
    sock = paths.proxy_dir / f"control.w{i}.sock"
    return [sys.executable, "-m", "haloy.proxy", *out, "--reuse-port",
            "--control-socket", str(sock)]


class Supervisor:
    """Starts, watches and fans control requests out to the workers."""

    def __init__(self, paths: Paths, count: int) -> None:
        self.paths = paths
        self.count = count
        self.procs: dict[int, asyncio.subprocess.Process] = {}
        self.last_snapshot: dict[str, Any] | None = None
        self.stopping = False

    def socket(self, i: int) -> Any:
        return self.paths.proxy_dir / f"control.w{i}.sock"

    async def start_worker(self, i: int) -> None:
        """Spawn worker `i` and wait until its control socket answers."""
        self.procs[i] = await asyncio.create_subprocess_exec(*_worker_argv(i, self.paths))
        for _ in range(200):
            with contextlib.suppress(OSError, TimeoutError, ValueError):
                await send_control(self.socket(i), {"op": "status"}, 1.0)
                break
            await asyncio.sleep(0.05)
        if self.last_snapshot is not None:
            request = {"op": "put_snapshot", "snapshot": self.last_snapshot}
            await send_control(self.socket(i), request)

    async def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        """Fan a control request out; merge the replies."""
        replies = await asyncio.gather(
            *(send_control(self.socket(i), request) for i in range(self.count)),
            return_exceptions=True,
        )
        good = [r for r in replies if isinstance(r, dict)]
        if len(good) < len(replies):
            return {"ok": False, "error": f"{len(replies) - len(good)} worker(s) did not answer"}
        bad = [r for r in good if not r.get("ok")]
        if bad:
            return bad[0]
        if request.get("op") == "put_snapshot":
            self.last_snapshot = request["snapshot"]
        if request.get("op") == "status":
            return _merge_status(good)
        return good[0]

    async def watch(self, i: int) -> None:
        """Restart worker `i` whenever it exits, until shutdown."""
        while not self.stopping:
            code = await self.procs[i].wait()
            if self.stopping:
                return
            log.warning("worker %d exited with %s; restarting", i, code)
            await self.start_worker(i)


def _merge_status(replies: list[dict[str, Any]]) -> dict[str, Any]:
    merged = dict(replies[0])
    merged["workers"] = len(replies)
    merged["connections"] = sum(r.get("connections", 0) for r in replies)
    for ri, route in enumerate(merged.get("routes", [])):
        for bi, backend in enumerate(route["backends"]):
            for key in ("active_connections", "requests"):
                backend[key] = sum(r["routes"][ri]["backends"][bi][key] for r in replies)
            backend["idle"] = backend["active_connections"] == 0
    return merged


async def supervise(paths: Paths, count: int) -> None:
    """Run `count` workers until SIGTERM/SIGINT, then stop them gracefully."""
    sup = Supervisor(paths, count)
    for i in range(count):
        await sup.start_worker(i)
    control = ControlServer(paths.control_socket, sup.handle)
    await control.start()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    watchers = [asyncio.create_task(sup.watch(i)) for i in range(count)]
    await stop.wait()
    sup.stopping = True
    for proc in sup.procs.values():
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
    await asyncio.gather(*(p.wait() for p in sup.procs.values()))
    for w in watchers:
        w.cancel()
    await control.close()
