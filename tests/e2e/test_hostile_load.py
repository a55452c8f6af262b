"""The proxy's malformed-request corpus replayed concurrently while normal clients are served."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from tests.e2e.loadgen import LoadGen
from tests.e2e.scale import record, size
from tests.fixtures.proxy import ProxyProcess
from tests.proxy.http_peers import Backend, route, snapshot
from tests.proxy.test_hostile import CORPUS, probe, rss_kib

ATTACKERS = 4


async def test_hostile_corpus_under_load_no_crash_no_leak(
    proxy_factory: Callable[..., ProxyProcess],
) -> None:
    rounds = int(size(3, 30))
    proxy = proxy_factory("--no-access-log", "--header-timeout", "0.5", https=False)
    url = f"http://127.0.0.1:{proxy.http_port}"
    wrong: list[str] = []

    async def attacker(n: int) -> None:
        for name, raw, expected in CORPUS[n::ATTACKERS]:
            got = await probe(proxy.http_port, raw)
            if got not in expected:
                wrong.append(f"{name}: got {got}, expected {expected}")

    async def replay() -> None:
        async with asyncio.TaskGroup() as tg:
            for n in range(ATTACKERS):
                tg.create_task(attacker(n))

    async with Backend() as be:
        reply = await asyncio.to_thread(proxy.put_snapshot, snapshot(route("app.test", be.spec())))
        assert reply["ok"], reply
        async with LoadGen(url, "app.test", max_requests=500_000, max_seconds=600) as load:
            await replay()  # warm-up: buffers and caches reach their working size
            baseline = rss_kib(proxy.proc.pid)
            for _ in range(rounds - 1):
                await replay()
            assert proxy.proc.poll() is None, proxy.logs()[-2000:]
        grown_kib = rss_kib(proxy.proc.pid) - baseline
        record(f"malformed corpus x{rounds} ({len(CORPUS)} inputs) under load", load.report,
               attacks=rounds * len(CORPUS), rss_growth_kib=grown_kib)
        assert wrong == [], wrong[:5]
        assert load.report.failures == [], load.report.describe_failures()
        assert all(not q.target.startswith("/smug") for q in be.requests)
        # Allocator slack only, not growth per attack.
        assert grown_kib < 16 * 1024
