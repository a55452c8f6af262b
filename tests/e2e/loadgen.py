"""A bounded load generator: keep-alive and new-connection clients, every outcome recorded.

    async with LoadGen(f"http://127.0.0.1:{port}", "web.test", max_requests=2000) as load:
        ...                                   # deploy, kill, restart while requests flow
    print(load.report.summary())              # sent 1804 failed 0 max 41.2 ms p99 12.0 ms

It stops by itself after `max_requests` or `max_seconds`, whichever comes first, so a test that
forgets to leave the block still ends. Run standalone: `python -m tests.e2e.loadgen URL HOST`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import time
from dataclasses import dataclass, field
from types import TracebackType

import httpx

from tests.fixtures.polling import await_until


@dataclass(frozen=True)
class Outcome:
    """One request: when it started (s since load start), its latency, status or error."""

    started: float
    latency: float
    status: int  # 0 when the request failed before a status line
    error: str = ""
    body: str = ""

    @property
    def ok(self) -> bool:
        return not self.error and 200 <= self.status < 300


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank q-th percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class LoadReport:
    """Every outcome of a load run, and the figures a scenario prints."""

    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def sent(self) -> int:
        return len(self.outcomes)

    @property
    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok]

    @property
    def max_latency(self) -> float:
        return max((o.latency for o in self.outcomes), default=0.0)

    @property
    def p99(self) -> float:
        return percentile([o.latency for o in self.outcomes], 99)

    def bodies(self) -> dict[str, int]:
        """Answers per body among the successful requests."""
        seen: dict[str, int] = {}
        for o in self.outcomes:
            if o.ok:
                seen[o.body] = seen.get(o.body, 0) + 1
        return seen

    def row(self) -> dict[str, float | int]:
        """The figures as a dict (for the chaos table)."""
        return {"sent": self.sent, "failed": len(self.failures),
                "max_ms": round(self.max_latency * 1000, 1), "p99_ms": round(self.p99 * 1000, 1)}

    def summary(self) -> str:
        """`sent N failed N max X ms p99 Y ms`."""
        r = self.row()
        return f"sent {r['sent']} failed {r['failed']} max {r['max_ms']} ms p99 {r['p99_ms']} ms"

    def describe_failures(self, limit: int = 5) -> list[str]:
        """The first failures, readable in an assertion message."""
        return [f"t={o.started:.3f}s status={o.status} {o.error}" for o in self.failures[:limit]]


class LoadGen:
    """Requests `host` through `base_url` from `keepalive` + `fresh` concurrent clients."""

    def __init__(
        self, base_url: str, host: str, *, path: str = "/", keepalive: int = 2, fresh: int = 1,
        max_requests: int = 5000, max_seconds: float = 120.0, request_timeout: float = 30.0,
        ready_timeout: float = 20.0,
    ) -> None:
        self.base_url, self.host, self.path = base_url, host, path
        self.keepalive, self.fresh = keepalive, fresh
        self.max_requests, self.max_seconds = max_requests, max_seconds
        self.request_timeout, self.ready_timeout = request_timeout, ready_timeout
        self.report = LoadReport()
        self._stop = asyncio.Event()
        self._served = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._t0 = 0.0
        self._issued = 0

    def _more(self) -> bool:
        return (not self._stop.is_set() and self._issued < self.max_requests
                and time.monotonic() - self._t0 < self.max_seconds)

    async def _client(self, reuse: bool) -> None:
        # A new-connection client allows no idle connection, so each request dials afresh.
        limits = httpx.Limits(max_keepalive_connections=1 if reuse else 0)
        async with httpx.AsyncClient(base_url=self.base_url, timeout=self.request_timeout,
                                     limits=limits, trust_env=False) as client:
            while self._more():
                self._issued += 1
                start = time.monotonic()
                try:
                    resp = await client.get(self.path, headers={"host": self.host})
                    outcome = Outcome(start - self._t0, time.monotonic() - start,
                                      resp.status_code, body=resp.text.strip()[:200])
                except httpx.HTTPError as exc:
                    outcome = Outcome(start - self._t0, time.monotonic() - start, 0,
                                      error=f"{type(exc).__name__}: {exc}")
                self.report.outcomes.append(outcome)
                if outcome.ok:
                    self._served.set()

    def start(self) -> None:
        """Start the clients without waiting for a first success."""
        self._t0 = time.monotonic()
        self._tasks = [asyncio.create_task(self._client(reuse=i < self.keepalive))
                       for i in range(self.keepalive + self.fresh)]

    async def __aenter__(self) -> LoadGen:
        self.start()
        # Readiness: the scenario starts once the route answers at least once.
        done = asyncio.create_task(asyncio.wait(self._tasks, return_when=asyncio.ALL_COMPLETED))
        served = asyncio.create_task(self._served.wait())
        await asyncio.wait({done, served}, timeout=self.ready_timeout,
                           return_when=asyncio.FIRST_COMPLETED)
        for task in (done, served):
            task.cancel()
        if not self._served.is_set():
            await self.stop()
            raise AssertionError(f"load never served: {self.report.describe_failures()}")
        return self

    async def wait_sent(self, count: int, timeout: float = 30.0) -> None:
        """Wait until `count` requests have completed (polls the report)."""
        await await_until(f"{count} requests sent", lambda: self.report.sent >= count,
                          timeout=timeout, interval=0.02)

    async def stop(self) -> LoadReport:
        """Stop issuing, let in-flight requests finish; returns the report."""
        self._stop.set()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        return self.report

    async def finish(self) -> LoadReport:
        """Wait until the request count or time limit ends the run."""
        for task in self._tasks:
            await task
        return self.report

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()


async def _main(args: argparse.Namespace) -> None:
    async with LoadGen(args.url, args.host, path=args.path, keepalive=args.keepalive,
                       fresh=args.fresh, max_requests=args.requests,
                       max_seconds=args.seconds) as load:
        await load.finish()
    print(load.report.summary())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="bounded HTTP load; prints sent/failed/max/p99")
    parser.add_argument("url")
    parser.add_argument("host")
    parser.add_argument("--path", default="/")
    parser.add_argument("--keepalive", type=int, default=2)
    parser.add_argument("--fresh", type=int, default=1)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=30.0)
    asyncio.run(_main(parser.parse_args()))
