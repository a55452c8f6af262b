"""bench/proxy: haloy-proxy against nginx, haproxy and Caddy, one worker each, on loopback.

Run `bench/proxy --help`. Progress goes to stderr, the Markdown report to stdout; the last
line is the summary, e.g. `haloy/nginx 0.83 haloy/caddy 3.6 https haloy/nginx 0.8 ...`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from types import FrameType

from proxybench import report
from proxybench.runner import Bench, Options, Results, log, raise_nofile
from proxybench.scenarios import ALL_KEYS, IDLE_KEY, SCENARIOS
from proxybench.systems import ALL_SYSTEMS

TOOLS = ("wrk", "nginx", "haproxy", "caddy", "unshare")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options; defaults run every scenario with short durations."""
    p = argparse.ArgumentParser(
        prog="bench/proxy",
        description="Benchmark haloy-proxy against nginx, haproxy and Caddy (one worker each).",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="about a minute: 1 s runs, 2 rounds, 2,000 idle connections",
    )
    p.add_argument(
        "--scenario",
        "-s",
        action="append",
        choices=ALL_KEYS,
        metavar="NAME",
        help=f"run only these (repeatable): {', '.join(ALL_KEYS)}",
    )
    p.add_argument(
        "--skip",
        action="append",
        choices=ALL_KEYS,
        metavar="NAME",
        default=[],
        help="leave these scenarios out (repeatable)",
    )
    p.add_argument(
        "--systems",
        default=",".join(ALL_SYSTEMS),
        help="comma-separated subset of haloy,nginx,haproxy,caddy",
    )
    p.add_argument("--rounds", type=int, help="interleaved rounds per system (default 3)")
    p.add_argument("--duration", type=int, help="seconds per wrk run (default 3)")
    p.add_argument("--warmup", type=int, help="seconds of warm-up per system and scenario")
    p.add_argument(
        "--idle-connections",
        type=int,
        help="idle keep-alive connections for the RSS scenario (default 10000)",
    )
    p.add_argument("--json", type=Path, help="also write raw results as JSON here")
    p.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (configs, logs)")
    return p.parse_args(argv)


def options(args: argparse.Namespace) -> Options:
    """Resolve defaults (quick or normal) and the scenario selection."""
    keys = set(args.scenario or ALL_KEYS) - set(args.skip)
    names = tuple(n.strip() for n in args.systems.split(",") if n.strip())
    unknown = set(names) - set(ALL_SYSTEMS)
    if unknown or not names:
        raise SystemExit(f"bench/proxy: unknown systems {sorted(unknown)}; use {ALL_SYSTEMS}")
    rounds = args.rounds or (2 if args.quick else 3)
    if rounds < 1:
        raise SystemExit("bench/proxy: --rounds must be at least 1")
    idle = (
        args.idle_connections
        if args.idle_connections is not None
        else (2000 if args.quick else 10000)
    )
    return Options(
        scenarios=tuple(s for s in SCENARIOS if s.key in keys),
        idle_count=idle if IDLE_KEY in keys else 0,
        systems=names,
        rounds=rounds,
        duration_s=args.duration or (1 if args.quick else 3),
        warmup_s=args.warmup if args.warmup is not None else (0 if args.quick else 1),
    )


def machine() -> str:
    """One line naming the machine, for the report."""
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.node()}: {cpu}, {os.cpu_count()} cores, Linux {platform.release()}"


def _first_line(argv: list[str]) -> str:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    lines = (proc.stdout or proc.stderr).strip().splitlines()
    return lines[0].strip() if lines else "?"


def versions() -> str:
    """Versions of everything measured, and the commit of haloy-proxy's code."""
    root = Path(__file__).resolve().parent.parent
    commit = _first_line(["git", "-C", str(root), "rev-parse", "--short", "HEAD"])
    dirty = _first_line(["git", "-C", str(root), "status", "--porcelain", "src/haloy/proxy"])
    state = " + uncommitted changes in src/haloy/proxy" if dirty not in ("", "?") else ""
    # The same PYTHONPATH as the haloy-proxy process we start: the build it imports.
    import haloy.proxy

    mode, _ = haloy.proxy.NATIVE
    return "; ".join(
        [
            f"haloy {commit}{state} ({mode} hot path) on Python {platform.python_version()}",
            _first_line(["nginx", "-v"]).replace("nginx version: ", ""),
            " ".join(_first_line(["haproxy", "-v"]).split()[:3]),
            "caddy " + _first_line(["caddy", "version"]).split()[0],
            " ".join(_first_line(["wrk", "-v"]).split()[:2]),
        ]
    )


def loadavg() -> str:
    """The 1-minute load average: other work on the machine skews every figure."""
    return Path("/proc/loadavg").read_text().split()[0]


def render(opts: Options, results: Results, argv: list[str], load: str) -> str:
    """The Markdown report; the summary line comes last."""
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    out = [
        f"## bench/proxy {' '.join(argv)}".rstrip(),
        f"{now} on {machine()}; {opts.rounds} interleaved rounds of {opts.duration_s} s per "
        f"system; backend: nginx (1 worker) returning a short body; {load}\n",
        f"{versions()}\n",
    ]
    for name, reason in results.start_failures.items():
        out.append(f"**{name} failed to start**:\n```\n{reason.strip()}\n```\n")
    for res in results.scenarios.values():
        out.append(report.scenario_table(res))
    if results.idle:
        out.append(report.idle_table(opts.idle_count, results.idle))
    out.append("### targets\n")
    out.extend(report.target_lines(results.scenarios, results.idle, opts.idle_count))
    out.append("")
    out.append(report.summary_line(results.scenarios))
    return "\n".join(out)


def dump_json(path: Path, opts: Options, results: Results) -> None:
    """Raw samples, for docs and later comparison."""
    data = {
        "machine": machine(),
        "rounds": opts.rounds,
        "duration_s": opts.duration_s,
        "start_failures": results.start_failures,
        "scenarios": {
            key: {
                "failed": res.failed,
                "rounds": [
                    {
                        name: {
                            **{k: v for k, v in asdict(s.wrk).items() if k != "raw"},
                            "cpu_s": s.cpu_s,
                            "cpu_us_per_unit": s.cpu_us,
                        }
                        for name, s in rnd.items()
                    }
                    for rnd in res.rounds
                ],
            }
            for key, res in results.scenarios.items()
        },
        "idle": {k: (v if isinstance(v, str) else asdict(v)) for k, v in results.idle.items()},
    }
    path.write_text(json.dumps(data, indent=2) + "\n")


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; always stop what it started."""
    args = parse_args(argv)
    opts = options(args)
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        log(f"bench/proxy: missing tools {missing}; "
            "install them: apt-get install wrk nginx haproxy caddy")
        return 2
    limit = raise_nofile()
    if opts.idle_count > limit - 100:
        log(f"bench/proxy: fd limit {limit} is too low for {opts.idle_count} idle connections")
        return 2
    # SIGINT too: a shell may start us with it ignored, and Ctrl-C must still clean up.
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    load_before = loadavg()
    if float(load_before) > 1.5:
        log(f"bench/proxy: load average is {load_before}: other work will skew the figures")
    tmp = Path(tempfile.mkdtemp(prefix="haloy-bench-"))
    bench = Bench(tmp, opts)
    try:
        results = bench.run()
    except KeyboardInterrupt:
        log("bench/proxy: interrupted; stopping everything")
        return 130
    finally:
        bench.close()
        if args.keep_tmp:
            log(f"bench/proxy: kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        dump_json(args.json, opts, results)
    load = f"load average {load_before} before, {loadavg()} after"
    print(render(opts, results, sys.argv[1:] if argv is None else argv, load))
    return 0


if __name__ == "__main__":
    sys.exit(main())
