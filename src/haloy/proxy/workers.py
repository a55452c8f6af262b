"""The supervisor (`--supervise`, `--workers N`): owns the ports, runs and replaces workers.

It binds the listening sockets once and passes them to N worker processes, owns the public
control socket and fans every request out to the workers' private sockets, so each worker
gets every snapshot; status sums the per-backend counters. A worker that dies is restarted.

A takeover (SIGHUP, `haloy-proxy reload`, control op `takeover`) starts a new generation of
workers from the launcher installed now, waits until each answers on its control socket with
the snapshot loaded, and only then tells the old ones to drain (SIGTERM) and exit. If a new
worker fails to start, the new generation is stopped and the old one keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sys
from pathlib import Path
from typing import Any

from haloy.config.paths import Paths
from haloy.errors import HaloyError
from haloy.proxy.control import ControlServer
from haloy.proxy.takeover import worker_args, worker_argv
from haloy.wire.control import send_control

log = logging.getLogger(__name__)
# A worker imports, reads the snapshot and loads certificates before it answers.
START_TIMEOUT = 30.0


class TakeoverFailed(Exception):
    """The new generation did not come up; the message says why."""


class ProxyStartError(HaloyError):
    """The first workers of a supervisor did not start."""


class Supervisor:
    """Starts, watches, replaces and fans control requests out to the workers."""

    def __init__(self, paths: Paths, count: int, listeners: dict[str, socket.socket]) -> None:
        self.paths = paths
        self.count = count
        self.listeners = listeners
        self.args = ["serve", *worker_args(sys.argv[2:])]
        self.generation = 0  # the generation serving now
        self.next_generation = 1  # advances on every takeover attempt: socket names never reused
        self.procs: dict[int, asyncio.subprocess.Process] = {}
        self.last_snapshot: dict[str, Any] | None = None
        self.pushes = 0  # successful put_snapshot fan-outs, to spot one during a takeover
        self.cert_reloads = 0  # successful reload_certs fan-outs, likewise
        self.stopping = False
        self.lock = asyncio.Lock()  # one takeover or restart at a time
        self.snap_lock = asyncio.Lock()  # a snapshot fan-out never straddles a generation swap
        # Old workers still finishing their work -> their control sockets (status counts them).
        self.draining: dict[asyncio.subprocess.Process, Path] = {}
        self.starting: set[asyncio.subprocess.Process] = set()
        self.watchers: set[asyncio.Task[None]] = set()

    def socket(self, i: int, generation: int | None = None) -> Path:
        """Worker `i`'s private control socket."""
        gen = self.generation if generation is None else generation
        return self.paths.proxy_dir / f"control.g{gen}.w{i}.sock"

    def _fds(self) -> dict[str, int]:
        return {name: s.fileno() for name, s in self.listeners.items()}

    async def _spawn(self, i: int, gen: int, required: bool) -> asyncio.subprocess.Process:
        """Start worker `i` of generation `gen`; return once its control socket answers."""
        argv = worker_argv(self.args, self.socket(i, gen), self._fds(), required)
        try:
            proc = await asyncio.create_subprocess_exec(*argv, pass_fds=tuple(self._fds().values()))
        except OSError as exc:  # e.g. the launcher is missing halfway through an upgrade
            raise TakeoverFailed(f"cannot start worker {i} ({argv[0]}): {exc}") from exc
        self.starting.add(proc)  # so a SIGTERM meanwhile stops it too
        try:
            return await self._await_ready(i, gen, proc)
        finally:
            self.starting.discard(proc)

    async def _await_ready(
        self, i: int, gen: int, proc: asyncio.subprocess.Process
    ) -> asyncio.subprocess.Process:
        loop = asyncio.get_running_loop()
        end = loop.time() + START_TIMEOUT
        while loop.time() < end:
            if proc.returncode is not None:
                raise TakeoverFailed(f"worker {i} exited with {proc.returncode} while starting "
                                     "(its log says why)")
            with contextlib.suppress(OSError, TimeoutError, ValueError):
                await send_control(self.socket(i, gen), {"op": "status"}, 1.0)
                return proc
            await asyncio.sleep(0.05)  # polling the readiness signal (the control socket)
        _terminate(proc)
        raise TakeoverFailed(f"worker {i} did not answer within {START_TIMEOUT:.0f}s")

    async def start(self) -> None:
        """Start the first generation (a missing or bad snapshot boots empty, as before)."""
        async with self.lock:  # a SIGHUP meanwhile takes over after this, not alongside
            try:
                for i in range(self.count):
                    self.procs[i] = await self._spawn(i, self.generation, required=False)
                    self._watch(i, self.procs[i])
                return
            except TakeoverFailed as exc:
                self.stopping = True  # the ones already started are not restarted
                error = exc
        await self.stop()
        raise ProxyStartError(f"haloy-proxy workers did not start: {error}",
                              hint="the lines above are the worker's own error") from error

    def _watch(self, i: int, proc: asyncio.subprocess.Process) -> None:
        task = asyncio.create_task(self._restart_on_exit(i, proc))
        self.watchers.add(task)
        task.add_done_callback(self.watchers.discard)

    async def _restart_on_exit(self, i: int, proc: asyncio.subprocess.Process) -> None:
        code = await proc.wait()
        if self.stopping or self.procs.get(i) is not proc:
            return  # shut down or replaced by a takeover
        log.warning("worker %d exited with %s; restarting", i, code)
        async with self.lock:
            # A takeover or stop may have run while this waited for the lock.
            if self.stopping or self.procs.get(i) is not proc:
                return
            try:
                self.procs[i] = await self._spawn(i, self.generation, required=False)
            except TakeoverFailed as exc:
                log.error("worker %d did not restart: %s", i, exc)
                return
            self._watch(i, self.procs[i])
            if self.last_snapshot is not None:
                request = {"op": "put_snapshot", "snapshot": self.last_snapshot}
                try:
                    await self._push([self.socket(i)], request)
                except TakeoverFailed as exc:
                    log.error("worker %d restarted without the latest snapshot: %s", i, exc)

    async def takeover(self) -> dict[str, Any]:
        """Replace every worker by one running the installed code; old ones drain and exit."""
        if self.stopping:
            return {"ok": False, "error": "haloy-proxy is stopping"}
        async with self.lock:
            if self.stopping:
                return {"ok": False, "error": "haloy-proxy is stopping"}
            gen, self.next_generation = self.next_generation, self.next_generation + 1
            pushes, cert_reloads = self.pushes, self.cert_reloads
            new = [self.socket(i, gen) for i in range(self.count)]
            # Concurrently, so N slow workers take one start time, not N (the reload timeout).
            spawned = await asyncio.gather(
                *(self._spawn(i, gen, required=True) for i in range(self.count)),
                return_exceptions=True,
            )
            started = [p for p in spawned if isinstance(p, asyncio.subprocess.Process)]
            try:
                failed = next((e for e in spawned if isinstance(e, BaseException)), None)
                if failed is not None:
                    raise failed
                if self.stopping:
                    raise TakeoverFailed("haloy-proxy is stopping")
                async with self.snap_lock:
                    # What arrived while the new workers were reading the files, before they serve.
                    if self.pushes != pushes and self.last_snapshot is not None:
                        await self._push(new, {"op": "put_snapshot",
                                               "snapshot": self.last_snapshot})
                    if self.cert_reloads != cert_reloads:
                        await self._push(new, {"op": "reload_certs"})
                    old, old_gen = dict(self.procs), self.generation
                    self.generation = gen
                    self.procs = dict(enumerate(started))
            except Exception as exc:
                self._abandon(spawned, new)
                log.error("takeover failed, the running workers keep serving: %s", exc)
                return {"ok": False, "error": f"takeover failed: {exc}; the running workers "
                        "keep serving"}
            except BaseException:
                self._abandon(spawned, new)  # cancelled: never leave started workers untracked
                raise
            for i, proc in self.procs.items():
                self._watch(i, proc)
            for i, proc in old.items():
                _terminate(proc)  # SIGTERM: stop accepting, finish in-flight work, exit
                self._reap(proc, self.socket(i, old_gen))
            log.info("takeover: generation %d serves (pids %s); %d old worker(s) draining",
                     gen, [p.pid for p in started], len(old))
            return {"ok": True, "generation": gen, "pids": [p.pid for p in started],
                    "draining": [p.pid for p in old.values()]}

    def _abandon(self, spawned: list[Any], sockets: list[Path]) -> None:
        """Stop the workers a failed takeover started; they drain what they accepted."""
        for proc, path in zip(spawned, sockets, strict=True):
            if isinstance(proc, asyncio.subprocess.Process):
                _terminate(proc)
                self._reap(proc, path)

    async def _push(self, sockets: list[Path], request: dict[str, Any]) -> None:
        """Send `request` to these workers; TakeoverFailed unless every one says ok."""
        for path in sockets:
            try:
                reply = await send_control(path, request)
            except (OSError, TimeoutError, ValueError) as exc:
                raise TakeoverFailed(f"{request['op']} to {path.name} failed: {exc}") from exc
            if not reply.get("ok"):
                raise TakeoverFailed(f"{request['op']} to {path.name}: {reply.get('error')}")

    def _reap(self, proc: asyncio.subprocess.Process, control: Path) -> None:
        self.draining[proc] = control

        async def wait() -> None:
            await proc.wait()
            self.draining.pop(proc, None)

        task = asyncio.create_task(wait())
        self.watchers.add(task)
        task.add_done_callback(self.watchers.discard)

    async def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        """Answer `takeover` here; fan anything else out to the workers and merge the replies."""
        if request.get("op") == "takeover":
            return await self.takeover()
        if request.get("op") in ("put_snapshot", "reload_certs"):
            async with self.snap_lock:  # replayed to a generation that starts meanwhile
                return await self._fan_out(request)
        return await self._fan_out(request)

    async def _fan_out(self, request: dict[str, Any]) -> dict[str, Any]:
        sockets = [self.socket(i) for i in range(self.count)]
        replies = await asyncio.gather(
            *(send_control(s, request) for s in sockets), return_exceptions=True
        )
        good = [r for r in replies if isinstance(r, dict)]
        if len(good) < len(replies):
            return {"ok": False, "error": f"{len(replies) - len(good)} worker(s) did not answer"}
        bad = [r for r in good if not r.get("ok")]
        if bad:
            return bad[0]
        if request.get("op") == "put_snapshot":
            self.last_snapshot = request["snapshot"]
            self.pushes += 1
        if request.get("op") == "reload_certs":
            self.cert_reloads += 1
        if request.get("op") == "status":
            merged = _merge_status(good)
            # haloyd waits for a draining backend to be idle: old workers' requests count too.
            old = await asyncio.gather(
                *(send_control(s, request, 1.0) for s in self.draining.values()),
                return_exceptions=True,
            )
            _add_draining(merged, [r for r in old if isinstance(r, dict) and r.get("ok")])
            merged["supervisor"] = {"generation": self.generation,
                                    "draining_workers": len(self.draining)}
            return merged
        return good[0]

    async def stop(self) -> None:
        """SIGTERM every worker (current and draining) and wait for them."""
        self.stopping = True
        procs = [*self.procs.values(), *self.draining, *self.starting]
        for proc in procs:
            _terminate(proc)
        await asyncio.gather(*(p.wait() for p in procs))
        for task in list(self.watchers):
            task.cancel()


def _terminate(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)


def _add_draining(merged: dict[str, Any], replies: list[dict[str, Any]]) -> None:
    """Add old workers' connections to the matching backends (their tables may differ)."""
    backends = {(b["address"], b["port"]): b
                for route in merged.get("routes", []) for b in route["backends"]}
    for reply in replies:
        merged["connections"] = merged.get("connections", 0) + reply.get("connections", 0)
        for route in reply.get("routes", []):
            for b in route["backends"]:
                mine = backends.get((b["address"], b["port"]))
                if mine is not None:
                    mine["active_connections"] += b["active_connections"]
                    mine["idle"] = mine["active_connections"] == 0


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


async def supervise(paths: Paths, count: int, listeners: dict[str, socket.socket]) -> None:
    """Run `count` workers until SIGTERM/SIGINT; SIGHUP takes over with a new generation."""
    sup = Supervisor(paths, count, listeners)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    hups: set[asyncio.Task[dict[str, Any]]] = set()

    def on_hup() -> None:
        task = asyncio.create_task(sup.takeover())
        hups.add(task)
        task.add_done_callback(hups.discard)

    # Before the workers start: a signal meanwhile must not kill the supervisor and orphan them.
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, on_hup)
    await sup.start()
    control = ControlServer(paths.control_socket, sup.handle)
    await control.start()
    await stop.wait()
    await control.close()  # no takeover or fan-out request can race the stop
    await sup.stop()
    for s in listeners.values():
        s.close()
