"""bench/propagation: how fast a started container becomes routable, and reconcile cost.

1. Propagation: `docker start` of a labelled container (its health check passes at once) ->
   first request served by it through haloy-proxy (when `haloy-proxy serve` is available;
   otherwise -> the route pushed on the control socket and the backend answering), over N runs.
2. Reconcile: one full reconcile + publish with M labelled running containers.

Propagation is timed from the container process's start (the engine's State.StartedAt): the
`docker start` command itself takes 0.6-0.9 s on a 2-core machine before that, which no
router can influence; the total including it is printed too.
The last line is the summary, e.g. `p50 0.21 s max 0.60 s reconcile(200) 0.35 s`.
Everything runs on a private Docker network that is removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from tests.fixtures.docker import (  # noqa: E402
    TEST_LABEL,
    ControlStub,
    backends_of,
    build_test_images,
    container_ip,
    docker_cli,
)
from tests.fixtures.proxy import start_proxy  # noqa: E402

from haloy.config.paths import Paths  # noqa: E402
from haloy.daemon.app import Haloyd, ServeSettings  # noqa: E402
from haloy.health.monitor import HealthSettings  # noqa: E402
from haloy.runtime.docker import DockerRuntime  # noqa: E402


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def labels_args(app: str, deployment: str, domain: str, tag: str) -> list[str]:
    labels = {
        "dev.haloy.appName": app,
        "dev.haloy.deployment-id": deployment,
        "dev.haloy.role": "app",
        "dev.haloy.domain.0": domain,
        "dev.haloy.health-check-path": "/cgi-bin/health",
        TEST_LABEL: tag,
    }
    return [a for k, v in labels.items() for a in ("--label", f"{k}={v}")]


def proxy_available() -> bool:
    try:
        import haloy.proxy.cmd_serve  # noqa: F401
    except ImportError:
        return False
    return True


async def propagation(
    daemon: Haloyd,
    stub: ControlStub | None,
    network: str,
    tag: str,
    runs: int,
    proxy_port: int | None,
) -> list[float]:
    times: list[float] = []
    totals: list[float] = []
    async with httpx.AsyncClient(timeout=2, trust_env=False) as client:
        for i in range(runs):
            domain = f"run{i}.bench.test"
            cid = docker_cli(
                "create",
                "--network",
                network,
                *labels_args(f"bench{i}", f"01BENCH{i:04d}", domain, tag),
                "haloy-test-app:v1",
            )
            t0 = time.time()
            # Start through the engine API in the background so polling runs meanwhile.
            starting = asyncio.create_task(daemon.runtime.client.containers.container(cid).start())
            if proxy_port is not None:
                while True:
                    try:
                        r = await client.get(
                            f"http://127.0.0.1:{proxy_port}/", headers={"Host": domain}
                        )
                        if r.status_code == 200 and r.text.startswith("haloy-test-app"):
                            break
                    except httpx.HTTPError:
                        pass
                    await asyncio.sleep(0.005)
            else:
                assert stub is not None
                await starting
                ip = container_ip(cid, network)
                await stub.wait_for(lambda s, d=domain, a=ip: backends_of(s, d) == [(a, "active")])
                r = await client.get(f"http://{ip}:8080/")
                assert r.status_code == 200
            t1 = time.time()
            await starting
            started = started_at(cid)
            times.append(t1 - started)
            totals.append(t1 - t0)
            log(
                f"run {i + 1}/{runs}: {times[-1]:.3f} s after the process started "
                f"({totals[-1]:.3f} s after `docker start` was run)"
            )
            docker_cli("rm", "-f", cid)
    log(
        f"including the `docker start` command itself: p50 {statistics.median(totals):.2f} s "
        f"max {max(totals):.2f} s"
    )
    return times


def started_at(cid: str) -> float:
    """When the engine says the container's process started (State.StartedAt), epoch seconds."""
    raw = docker_cli("inspect", "-f", "{{.State.StartedAt}}", cid)  # 2026-01-01T00:00:00.123456789Z
    head, _, frac = raw.rstrip("Z").partition(".")
    stamp = dt.datetime.fromisoformat(head).replace(tzinfo=dt.UTC).timestamp()
    return stamp + float(f"0.{frac or 0}")


async def reconcile_cost(daemon: Haloyd, network: str, tag: str, count: int) -> float:
    log(f"starting {count} labelled containers ...")

    def run_one(i: int) -> str:
        return docker_cli(
            "run",
            "-d",
            "--network",
            network,
            *labels_args(f"many{i}", "01MANY", f"many{i}.bench.test", tag),
            "haloy-test-app:v1",
            timeout=120,
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(run_one, range(count)))
    samples = []
    for _ in range(5):
        t0 = time.perf_counter()
        inventory = await daemon.discovery.reconcile()
        await daemon.publisher.publish()
        samples.append(time.perf_counter() - t0)
        assert len(inventory.replicas) >= count, len(inventory.replicas)
    log("reconcile samples: " + " ".join(f"{s:.3f}" for s in samples))
    return statistics.median(samples)


async def main(args: argparse.Namespace) -> None:
    build_test_images()
    tag = uuid.uuid4().hex[:10]
    network = f"haloy-bench-{tag}"
    with tempfile.TemporaryDirectory(prefix="haloy-bench-") as tmp:
        paths = Paths(Path(tmp) / "data" / "etc", Path(tmp) / "data")
        docker_cli("network", "create", "--label", f"{TEST_LABEL}={tag}", network)
        proxy = stub = None
        runtime = await DockerRuntime.connect()
        try:
            port = None
            if proxy_available() and not args.no_proxy:
                proxy = start_proxy(paths.data_dir, "--no-access-log", https=False)
                port = proxy.http_port
            else:
                log("haloy-proxy serve not available: measuring to route pushed + backend answer")
                stub = await ControlStub(paths.control_socket).start()
            health = HealthSettings(interval=args.interval, fall=3, rise=2, timeout=2.0)
            daemon = Haloyd(ServeSettings(paths, network, health), runtime)
            async with asyncio.TaskGroup() as tg:
                tasks = [
                    tg.create_task(c)
                    for c in (daemon.discovery.run(), daemon.monitor.run(), daemon.publisher.run())
                ]
                times = await propagation(daemon, stub, network, tag, args.runs, port)
                recon = await reconcile_cost(daemon, network, tag, args.containers)
                for t in tasks:
                    t.cancel()
        finally:
            await runtime.close()
            if stub is not None:
                await stub.stop()
            if proxy is not None:
                proxy.stop()
            ids = docker_cli("ps", "-aq", "--filter", f"label={TEST_LABEL}={tag}").split()
            for chunk in range(0, len(ids), 50):
                docker_cli("rm", "-f", *ids[chunk : chunk + 50], timeout=120)
            with contextlib.suppress(AssertionError):
                docker_cli("network", "rm", network)
    mode = "through haloy-proxy" if port is not None else "to route pushed (no proxy)"
    log(f"propagation {mode}, {args.runs} runs; reconcile with {args.containers} containers")
    print(
        f"p50 {statistics.median(times):.2f} s max {max(times):.2f} s "
        f"reconcile({args.containers}) {recon:.2f} s"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--containers", type=int, default=200)
    parser.add_argument("--interval", type=float, default=15.0, help="health interval (s)")
    parser.add_argument("--no-proxy", action="store_true", help="measure without haloy-proxy")
    os.environ.setdefault("DOCKER_BUILDKIT", "0")
    asyncio.run(main(parser.parse_args()))
