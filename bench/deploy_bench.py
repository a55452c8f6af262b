"""bench/deploy: deploy request -> first request served by the new version, through haloy-proxy.

A present image, 1 replica, healthy at its first probe: the deployer (real dockerd, real
haloy-proxy, real SQLite history) deploys v1 and v2 alternately; each run is timed from
`Deployer.submit` to the first response through the proxy that names the new version.
A loop requests the route all along, so the figure includes propagation to the proxy.
The last line is the summary, e.g. `p50 0.85 s max 1.10 s (10 runs)`; the goal is < 2 s p50.
Everything runs on a private Docker network and temp dir, removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from tests.daemon.deployer_harness import DOMAIN, deployer_harness  # noqa: E402
from tests.fixtures.docker import build_test_images, docker_cli  # noqa: E402
from tests.fixtures.proxy import start_proxy  # noqa: E402


async def run(runs: int) -> list[float]:
    """Deploy `runs` times (after a first untimed deploy); return the seconds of each."""
    network = f"haloy-bench-{uuid.uuid4().hex[:8]}"
    cleanup = uuid.uuid4().hex[:10]
    docker_cli("network", "create", "--attachable", network)
    with tempfile.TemporaryDirectory(prefix="haloy-deploy-bench-") as tmp:
        proxy = start_proxy(Path(tmp) / "proxy", "--no-access-log", https=False)
        try:
            async with deployer_harness(Path(tmp), network, cleanup, proxy) as h:
                await h.deploy("v1")
                times: list[float] = []
                base = f"http://127.0.0.1:{proxy.http_port}"
                async with httpx.AsyncClient(base_url=base, timeout=30) as client:
                    for i in range(runs):
                        version = "v2" if i % 2 == 0 else "v1"
                        start = time.perf_counter()
                        dep = await h.deployer.submit(h.spec(version))
                        while True:
                            resp = await client.get("/", headers={"host": DOMAIN})
                            if resp.text.strip().endswith(version):
                                break
                        times.append(time.perf_counter() - start)
                        await h.deployer.wait(dep.id)
                        print(f"run {i + 1}: {times[-1]:.3f} s", flush=True)
                return times
        finally:
            proxy.stop()
            ids = docker_cli("ps", "-aq", "--filter", f"network={network}", check=False).split()
            if ids:
                docker_cli("rm", "-f", *ids, check=False)
            docker_cli("network", "rm", network, check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    build_test_images()
    times = asyncio.run(run(args.runs))
    print(f"p50 {statistics.median(times):.2f} s max {max(times):.2f} s ({len(times)} runs)")


if __name__ == "__main__":
    main()
