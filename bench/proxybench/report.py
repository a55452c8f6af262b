"""Medians, paired ratios, target checks and the text report (pure)."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

from .scenarios import Scenario
from .wrkrun import WrkResult

MB = 1024 * 1024


@dataclass(frozen=True)
class Sample:
    """One wrk round against one system, with the proxy's CPU time over that round."""

    wrk: WrkResult
    cpu_s: float

    @property
    def cpu_us(self) -> float:
        """Server CPU µs per request (per connection or handshake in close scenarios)."""
        return self.cpu_s * 1e6 / max(self.wrk.requests, 1)


Metric = Callable[[Sample], float]
METRICS: dict[str, Metric] = {
    "rps": lambda s: s.wrk.rps,
    "p50": lambda s: s.wrk.p50_ms,
    "p99": lambda s: s.wrk.p99_ms,
    "cpu": lambda s: s.cpu_us,
}


@dataclass
class ScenarioResult:
    """Every round of one scenario: rounds[i][system] is that round's sample."""

    scenario: Scenario
    systems: tuple[str, ...]
    rounds: list[dict[str, Sample]] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def median(self, system: str, metric: str) -> float | None:
        """Median of one metric over the rounds a system completed."""
        values = [METRICS[metric](r[system]) for r in self.rounds if system in r]
        return statistics.median(values) if values else None

    def ratio(self, a: str, b: str, metric: str) -> float | None:
        """Median over rounds of a's metric / b's metric in the same round (paired)."""
        values = [
            METRICS[metric](r[a]) / METRICS[metric](r[b])
            for r in self.rounds
            if a in r and b in r and METRICS[metric](r[b]) > 0
        ]
        return statistics.median(values) if values else None

    def errors(self, system: str) -> int:
        return sum(
            r[system].wrk.socket_errors + r[system].wrk.non_2xx for r in self.rounds if system in r
        )


@dataclass(frozen=True)
class IdleSample:
    """RSS of one proxy before and while holding idle keep-alive connections."""

    baseline: int
    loaded: int
    loaded_pss: int
    opened: int
    still_open: int


@dataclass(frozen=True)
class Target:
    """A figure from the issues: haloy/peer of a metric against a bound."""

    scenario: str
    metric: str
    peer: str
    must: float
    aim: float | None
    higher_is_better: bool

    def label(self) -> str:
        return f"{self.scenario} {self.metric} haloy/{self.peer}"

    def verdict(self, value: float) -> str:
        def ok(bound: float) -> bool:
            return value >= bound if self.higher_is_better else value <= bound

        sign = ">=" if self.higher_is_better else "<="
        met = "MET" if ok(self.must) else "MISSED"
        aim = ""
        if self.aim is not None:
            aim = f"; aim {sign} {self.aim:g} {'met' if ok(self.aim) else 'not met'}"
        return f"{met} (must {sign} {self.must:g}{aim})"


TARGETS: tuple[Target, ...] = (
    Target("keepalive", "rps", "nginx", 0.8, 1.0, True),
    Target("keepalive", "cpu", "nginx", 1.4, 1.0, False),
    Target("keepalive", "rps", "caddy", 3.0, None, True),
    Target("keepalive", "p99", "nginx", 1.5, None, False),
    Target("headers", "rps", "nginx", 0.75, None, True),
    Target("close", "cpu", "nginx", 2.0, None, False),
    Target("https", "rps", "nginx", 0.75, 0.95, True),
    Target("https", "rps", "caddy", 2.5, None, True),
    Target("handshake", "cpu", "nginx", 1.6, None, False),
)
IDLE_RSS_LIMIT = 150 * MB


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def scenario_table(res: ScenarioResult) -> str:
    """Markdown table of medians plus haloy's paired ratios to each peer."""
    sc = res.scenario
    head = (
        f"### {sc.key}: {sc.title}\n"
        f"wrk -t{sc.threads} -c{sc.connections}, {len(res.rounds)} rounds, "
        f"medians; CPU = proxy process(es) utime+stime per {sc.unit}\n\n"
        f"| system | req/s | p50 ms | p99 ms | CPU µs/{sc.unit} | errors |\n"
        "|---|---:|---:|---:|---:|---:|\n"
    )
    rows = []
    for name in res.systems:
        if name in res.failed:
            rows.append(f"| {name} | FAILED: {res.failed[name].splitlines()[0]} | | | | |")
            continue
        rows.append(
            f"| {name} | {_fmt(res.median(name, 'rps'), ',.0f')} "
            f"| {_fmt(res.median(name, 'p50'), '.2f')} | {_fmt(res.median(name, 'p99'), '.2f')} "
            f"| {_fmt(res.median(name, 'cpu'), '.1f')} | {res.errors(name)} |"
        )
    ratios: list[str] = []
    if "haloy" in res.systems and "haloy" not in res.failed:
        for peer in res.systems:
            if peer == "haloy":
                continue
            parts = [
                f"{m} {_fmt(res.ratio('haloy', peer, m), '.2f')}" for m in ("rps", "p99", "cpu")
            ]
            ratios.append(f"- haloy/{peer} (paired medians): " + ", ".join(parts))
    tail = "\n\n" + "\n".join(ratios) if ratios else ""
    return head + "\n".join(rows) + tail + "\n"


def idle_table(count: int, idle: dict[str, IdleSample | str]) -> str:
    """Markdown table of RSS with `count` idle keep-alive connections."""
    out = [
        f"### idle: RSS at {count:,} idle keep-alive client connections\n",
        "| system | RSS before MB | RSS with conns MB | PSS with conns MB | KiB/conn | opened "
        "| still open |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, s in idle.items():
        if isinstance(s, str):
            out.append(f"| {name} | FAILED: {s.splitlines()[0]} | | | | | |")
            continue
        per = (s.loaded - s.baseline) / 1024 / max(s.opened, 1)
        out.append(
            f"| {name} | {s.baseline / MB:.1f} | {s.loaded / MB:.1f} | {s.loaded_pss / MB:.1f} "
            f"| {per:.1f} "
            f"| {s.opened:,} | {s.still_open:,} |"
        )
    return "\n".join(out) + "\n"


def target_lines(
    results: dict[str, ScenarioResult], idle: dict[str, IdleSample | str], idle_count: int
) -> list[str]:
    """One line per target from the issues: the measured ratio and whether it is met."""
    lines = []
    for t in TARGETS:
        res = results.get(t.scenario)
        value = res.ratio("haloy", t.peer, t.metric) if res else None
        if value is None:
            lines.append(f"- {t.label()}: not measured")
        else:
            lines.append(f"- {t.label()} = {value:.2f}: {t.verdict(value)}")
    haloy_idle = idle.get("haloy")
    if isinstance(haloy_idle, IdleSample):
        met = "MET" if haloy_idle.loaded <= IDLE_RSS_LIMIT else "MISSED"
        lines.append(
            f"- idle RSS haloy at {haloy_idle.opened:,} conns = "
            f"{haloy_idle.loaded / MB:.1f} MB: {met} (must <= 150 MB"
            f"{'' if idle_count >= 10000 else f'; measured with only {idle_count:,}'})"
        )
    else:
        lines.append("- idle RSS haloy: not measured")
    return lines


def summary_line(results: dict[str, ScenarioResult]) -> str:
    """`haloy/nginx 0.83 haloy/caddy 3.6` (+ the HTTPS pair when measured)."""
    parts = []
    for key, prefix in (("keepalive", ""), ("https", "https ")):
        res = results.get(key)
        if res is None:
            continue
        for peer in ("nginx", "caddy"):
            value = res.ratio("haloy", peer, "rps") if peer in res.systems else None
            parts.append(f"{prefix}haloy/{peer} {_fmt(value, '.2f') if value else 'n/a'}")
    return " ".join(parts)
