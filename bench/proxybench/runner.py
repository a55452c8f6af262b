"""Drive one benchmark run: start everything, measure interleaved rounds, stop everything."""

from __future__ import annotations

import asyncio
import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import systems
from .configs import Listen, TlsFiles
from .idle import hold_idle
from .procstat import cpu_seconds, process_tree, pss_bytes, rss_bytes
from .report import IdleSample, Sample, ScenarioResult
from .scenarios import Scenario
from .systems import Running, StartError
from .tlsfiles import HOST, make_tls_files
from .wrkrun import WrkError, build_noresume, run_wrk, wrk_command


@dataclass(frozen=True)
class Options:
    """What to run and for how long."""

    scenarios: tuple[Scenario, ...]
    idle_count: int  # 0 = skip the idle-connections scenario
    systems: tuple[str, ...]
    rounds: int
    duration_s: int
    warmup_s: int


@dataclass
class Results:
    """Everything measured in one run."""

    scenarios: dict[str, ScenarioResult] = field(default_factory=dict)
    idle: dict[str, IdleSample | str] = field(default_factory=dict)
    start_failures: dict[str, str] = field(default_factory=dict)


def log(message: str) -> None:
    """Progress goes to stderr so stdout holds only the report."""
    print(message, file=sys.stderr, flush=True)


def raise_nofile() -> int:
    """Lift the soft fd limit to the hard one; children (the proxies) inherit it."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


class Bench:
    """Owns the temp dir and every process started in it; close() stops them all."""

    def __init__(self, tmp: Path, opts: Options) -> None:
        self.tmp = tmp
        self.opts = opts
        self.running: list[Running] = []
        self.results = Results()
        self.tls: TlsFiles | None = None
        self.hosts_file = tmp / "hosts"
        self.noresume: Path | None = None
        self.noresume_error = ""
        self.https_broken: dict[str, str] = {}

    def close(self) -> None:
        """Stop every process still running, newest first."""
        while self.running:
            self.running.pop().stop()

    def run(self) -> Results:
        """The whole benchmark; grouped by worker count because that needs a restart."""
        if any(s.https for s in self.opts.scenarios):
            self.tls = make_tls_files(self.tmp / "tls")
            self.hosts_file.write_text(f"127.0.0.1 {HOST}\n127.0.0.1 localhost\n")
        if any(s.full_handshake for s in self.opts.scenarios):
            try:
                self.noresume = build_noresume(self.tmp)
            except WrkError as exc:
                self.noresume_error = str(exc)
                log(f"bench/proxy: {exc}")
        be = self._start_backend()
        for workers in sorted({s.workers for s in self.opts.scenarios} | {1}):
            group = [s for s in self.opts.scenarios if s.workers == workers]
            idle = workers == 1 and self.opts.idle_count > 0
            if not group and not idle:
                continue
            https = any(s.https for s in group)
            procs = self._start_proxies(be.listen.http_port, workers, https)
            if idle:
                # First, on fresh processes: the figure must not depend on what ran before.
                self._measure_idle(procs)
            for scenario in group:
                self._measure(scenario, procs)
            for proc in procs.values():
                proc.stop()
                self.running.remove(proc)
        return self.results

    def _start_backend(self) -> Running:
        be = systems.backend(self.tmp / "backend")
        self.running.append(be)
        be.start()
        systems.wait_ready(be)
        status, _ = systems.fetch(be.listen.http_port)
        if status != 200:
            raise StartError(f"the backend answered {status}")
        return be

    def _start_proxies(self, backend_port: int, workers: int, https: bool) -> dict[str, Running]:
        procs: dict[str, Running] = {}
        for name in self.opts.systems:
            listen = Listen(
                http_port=systems.free_port(),
                https_port=systems.free_port() if https else None,
                backend_port=backend_port,
                workers=workers,
            )
            try:
                proc = systems.proxy(name, self.tmp / f"{name}-w{workers}", listen, self.tls)
            except Exception as exc:  # a broken haloy package must not stop the peers' run
                self._fail_start(name, workers, f"{type(exc).__name__}: {exc}")
                continue
            self.running.append(proc)
            proc.start()
            procs[name] = proc
        for name, proc in list(procs.items()):
            try:
                systems.wait_ready(proc)
                systems.verify(proc)
            except StartError as exc:
                self._fail_start(name, workers, str(exc))
                proc.stop()
                self.running.remove(proc)
                del procs[name]
                continue
            log(f"started {name} ({workers} worker(s)), pid {proc.pid}: answers 200 over HTTP")
            if https and self.tls is not None:
                # A broken HTTPS side fails only the HTTPS scenarios of that system.
                try:
                    systems.verify(proc, self.tls)
                    log("   and over HTTPS with the bench.local certificate")
                except StartError as exc:
                    self.https_broken[name] = str(exc)
                    self._fail_start(f"{name} HTTPS", workers, str(exc))
        return procs

    def _fail_start(self, name: str, workers: int, reason: str) -> None:
        log(f"FAILED to start {name} ({workers} worker(s)): {reason}")
        self.results.start_failures[f"{name} ({workers} worker(s))"] = reason

    def _url(self, proc: Running, scenario: Scenario) -> str:
        if scenario.https:
            return f"https://{HOST}:{proc.listen.https_port}{scenario.path}"
        return f"http://127.0.0.1:{proc.listen.http_port}{scenario.path}"

    def _wrk(self, proc: Running, scenario: Scenario, duration_s: int) -> Sample:
        argv = wrk_command(
            self._url(proc, scenario),
            threads=scenario.threads,
            connections=scenario.connections,
            duration_s=duration_s,
            headers=scenario.all_headers(),
            hosts_file=self.hosts_file if scenario.https else None,
            preload=self.noresume if scenario.full_handshake else None,
        )
        pids = process_tree(proc.pid)
        before = cpu_seconds(pids)
        result = run_wrk(argv, timeout_s=duration_s + 60)
        after = cpu_seconds(pids)
        if not proc.alive():
            raise StartError(f"{proc.name} died during the run:\n{proc.log_tail()}")
        return Sample(result, after - before)

    def _measure(self, scenario: Scenario, procs: dict[str, Running]) -> None:
        res = ScenarioResult(scenario, self.opts.systems)
        self.results.scenarios[scenario.key] = res
        for name in self.opts.systems:
            if name not in procs:
                res.failed[name] = "did not start (see above)"
            elif scenario.https and name in self.https_broken:
                res.failed[name] = self.https_broken[name]
            elif scenario.full_handshake and self.noresume is None:
                res.failed[name] = self.noresume_error
        live = [n for n in self.opts.systems if n in procs and n not in res.failed]
        log(f"== {scenario.key}: {scenario.title}")
        if self.opts.warmup_s > 0:
            for name in live:
                self._try(res, name, procs, scenario, self.opts.warmup_s)
        for rnd in range(self.opts.rounds):
            sample_round: dict[str, Sample] = {}
            # Rotate the order each round so no system always runs first or last.
            order = live[rnd % len(live) :] + live[: rnd % len(live)] if live else []
            for name in order:
                if name in res.failed:
                    continue
                sample = self._try(res, name, procs, scenario, self.opts.duration_s)
                if sample is not None:
                    sample_round[name] = sample
                    log(
                        f"   round {rnd + 1} {name:8s} {sample.wrk.rps:10,.0f} req/s "
                        f"p99 {sample.wrk.p99_ms:7.2f} ms  cpu {sample.cpu_us:7.1f} µs/"
                        f"{scenario.unit}  errors {sample.wrk.socket_errors + sample.wrk.non_2xx}"
                        f" {sample.wrk.error_detail}"
                        + (f" non-2xx {sample.wrk.non_2xx}" if sample.wrk.non_2xx else "")
                    )
            res.rounds.append(sample_round)

    def _try(
        self,
        res: ScenarioResult,
        name: str,
        procs: dict[str, Running],
        scenario: Scenario,
        duration_s: int,
    ) -> Sample | None:
        try:
            return self._wrk(procs[name], scenario, duration_s)
        except (WrkError, StartError, OSError) as exc:
            res.failed[name] = str(exc)
            log(f"   {name} FAILED: {exc}")
            return None

    def _measure_idle(self, procs: dict[str, Running]) -> None:
        count = self.opts.idle_count
        log(f"== idle: RSS at {count:,} idle keep-alive connections")
        for name in self.opts.systems:
            if name not in procs:
                self.results.idle[name] = "did not start (see above)"
                continue
            proc = procs[name]
            baseline = rss_bytes(process_tree(proc.pid))

            async def settle() -> None:
                await asyncio.sleep(1.0)  # let lazily freed buffers and GC settle

            pss: list[int] = []

            def probe(pid: int = proc.pid, pss: list[int] = pss) -> int:
                tree = process_tree(pid)
                pss.append(pss_bytes(tree))
                return rss_bytes(tree)

            started = time.monotonic()
            got = asyncio.run(hold_idle(proc.listen.http_port, count, probe, settle))
            if not proc.alive():
                self.results.idle[name] = f"died holding idle connections: {proc.log_tail(2)}"
                continue
            self.results.idle[name] = IdleSample(
                baseline, got.probe, pss[0], got.opened, got.still_open
            )
            log(
                f"   {name:8s} {got.opened:,} opened ({got.failed:,} failed), "
                f"{got.still_open:,} still open, RSS {baseline / 2**20:.1f} -> "
                f"{got.probe / 2**20:.1f} MB in {time.monotonic() - started:.1f} s"
            )
