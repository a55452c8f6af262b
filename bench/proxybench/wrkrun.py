"""Run wrk against one proxy and parse its report."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}
_PCT_RE = re.compile(r"^\s*(50|75|90|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s|m)\s*$", re.M)
_TOTAL_RE = re.compile(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m)", re.M)
_RPS_RE = re.compile(r"^Requests/sec:\s+([\d.]+)", re.M)
_SOCKERR_RE = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_NON2XX_RE = re.compile(r"Non-2xx or 3xx responses: (\d+)")


@dataclass(frozen=True)
class WrkResult:
    """One wrk run: throughput, latency percentiles (ms) and error counts."""

    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    socket_errors: int
    non_2xx: int
    error_detail: str
    raw: str


class WrkError(RuntimeError):
    """wrk failed or printed something we could not parse."""


def parse_wrk(text: str) -> WrkResult:
    """Parse the text wrk --latency prints."""
    pct = {m.group(1): float(m.group(2)) * _UNITS[m.group(3)] for m in _PCT_RE.finditer(text)}
    total = _TOTAL_RE.search(text)
    rps = _RPS_RE.search(text)
    if total is None or rps is None or "50" not in pct or "99" not in pct:
        raise WrkError(f"could not parse wrk output:\n{text}")
    sock = _SOCKERR_RE.search(text)
    # Read errors on Connection: close runs are the server's close being noticed; count
    # them all anyway and let the report show them.
    errors = sum(int(g) for g in sock.groups()) if sock else 0
    non2xx = _NON2XX_RE.search(text)
    return WrkResult(
        requests=int(total.group(1)),
        rps=float(rps.group(1)),
        p50_ms=pct["50"],
        p99_ms=pct["99"],
        socket_errors=errors,
        non_2xx=int(non2xx.group(1)) if non2xx else 0,
        error_detail=sock.group(0) if sock else "",
        raw=text,
    )


def wrk_command(
    url: str,
    *,
    threads: int,
    connections: int,
    duration_s: int,
    headers: tuple[str, ...],
    hosts_file: Path | None = None,
    preload: Path | None = None,
) -> list[str]:
    """The wrk argv; with hosts_file, wrk runs in a private mount namespace seeing it."""
    argv = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration_s}s",
        "--latency",
        "--timeout",
        "10s",
    ]
    for header in headers:
        argv += ["-H", header]
    argv.append(url)
    if hosts_file is None and preload is None:
        return argv
    # wrk sends the URL's host as TLS SNI; to send SNI bench.local without touching the
    # machine's /etc/hosts, wrk gets its own mount namespace with a hosts file bound over it.
    quoted = " ".join(_shell_quote(a) for a in argv)
    script = f"exec {quoted}"
    if preload is not None:
        script = f"LD_PRELOAD={_shell_quote(str(preload))} {script}"
    if hosts_file is None:
        return ["sh", "-c", script]
    script = f"mount --bind {_shell_quote(str(hosts_file))} /etc/hosts && {script}"
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script]


def _shell_quote(arg: str) -> str:
    return "'" + arg.replace("'", "'\"'\"'") + "'"


def run_wrk(argv: list[str], timeout_s: float) -> WrkResult:
    """Run wrk to completion and parse its report."""
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, check=False)
    if proc.returncode != 0:
        raise WrkError(f"wrk exited {proc.returncode}: {proc.stderr.strip() or proc.stdout}")
    return parse_wrk(proc.stdout)


def build_noresume(out_dir: Path) -> Path:
    """Compile the shim that makes wrk do a full TLS handshake per connection (needs gcc)."""
    source = Path(__file__).with_name("noresume.c")
    target = out_dir / "noresume.so"
    proc = subprocess.run(
        ["gcc", "-O2", "-shared", "-fPIC", "-o", str(target), str(source), "-ldl"],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise WrkError(f"could not build the no-resumption shim: {proc.stderr.strip()}")
    return target
