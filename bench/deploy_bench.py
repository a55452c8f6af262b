"""bench/deploy: an API deploy call -> first request served by the new version; and the bytes a
redeploy uploads when one small layer changed.

1. A present image, 1 replica, healthy at its first probe: `POST /v1/deploy` on the real API
   (uvicorn, real deployer, real dockerd, real haloy-proxy, SQLite history) deploys v1 and v2
   alternately; each run is timed from the API call to the first response through the proxy
   that names the new version (a request loop runs all along, so propagation is included).
2. A multi-layer image (the test image + a 2 MiB and a 1 MiB layer + a small layer) is shipped
   the way `haloy deploy` ships it (layer check, upload of what the server lacks, assemble);
   then only the small layer changes and it is shipped again: uploaded bytes / changed layer.
The last line is the summary, e.g. `p50 0.85 s max 1.10 s (10 runs) uploaded/changed 1.00`;
the goals are < 2 s p50 and <= 1.1. Everything runs on a private network and temp dir.
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
from tests.cli.test_deploy import TOKEN, served  # noqa: E402
from tests.daemon.deployer_harness import DOMAIN, HEALTH, Harness, deployer_harness  # noqa: E402
from tests.fixtures.docker import TEST_IMAGE, build_test_images, docker_cli  # noqa: E402
from tests.fixtures.proxy import start_proxy  # noqa: E402

from haloy.cli.api_client import ApiClient  # noqa: E402
from haloy.cli.ship import save_image, ship_layers  # noqa: E402
from haloy.daemon.api import LayerStore  # noqa: E402

LAYERED = "haloy-bench-layers"


def body(h: Harness, version: str) -> dict[str, object]:
    """The POST /v1/deploy body `haloy deploy` would send for the test image `version`."""
    return {"app": h.app, "image": f"{TEST_IMAGE}:{version}", "domains": [{"domain": DOMAIN}],
            "healthCheckPath": HEALTH, "replicas": 1, "pullPolicy": "never"}


async def time_deploys(h: Harness, api: ApiClient, proxy_port: int, runs: int) -> list[float]:
    """Deploy `runs` times through the API (after an untimed first); seconds of each."""
    first = await api.post("/v1/deploy", body(h, "v1"))
    await h.deployer.wait(first["deploymentId"])
    times: list[float] = []
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{proxy_port}", timeout=30) as c:
        for i in range(runs):
            version = "v2" if i % 2 == 0 else "v1"
            start = time.perf_counter()
            answer = await api.post("/v1/deploy", body(h, version))
            while not (await c.get("/", headers={"host": DOMAIN})).text.strip().endswith(version):
                pass
            times.append(time.perf_counter() - start)
            await h.deployer.wait(answer["deploymentId"])
            print(f"run {i + 1}: {times[-1]:.3f} s", flush=True)
    return times


def build_layered(tag: str, small: str, into: Path) -> None:
    """The test image + 2 MiB + 1 MiB of random bytes + a small layer saying `small`."""
    into.mkdir(parents=True, exist_ok=True)
    (into / "big2").write_bytes(_random(2 << 20, 1))
    (into / "big1").write_bytes(_random(1 << 20, 2))
    (into / "small.txt").write_text(small + "\n")
    (into / "Dockerfile").write_text(
        f"FROM {TEST_IMAGE}:v1\nCOPY big2 /www/big2\nCOPY big1 /www/big1\n"
        "COPY small.txt /www/small.txt\n"
    )
    docker_cli("build", "-q", "-t", f"{LAYERED}:{tag}", str(into), timeout=300)


def _random(size: int, seed: int) -> bytes:
    import random

    return random.Random(seed).randbytes(size)


async def upload_ratio(api: ApiClient, caps: list[str], tmp: Path) -> float:
    """Ship version a, change the small layer, ship b: uploaded bytes / changed layer bytes."""
    build_layered("a", "version a", tmp / "a")
    layers, sent, _ = await ship_layers(api, f"{LAYERED}:a", caps, lambda n, t: None)
    print(f"first ship: {layers} layer(s), {sent} bytes", flush=True)
    build_layered("b", "version b", tmp / "b")
    old = {layer.digest for layer in await save_image(f"{LAYERED}:a", tmp / "save-a")}
    changed = sum(layer.size for layer in await save_image(f"{LAYERED}:b", tmp / "save-b")
                  if layer.digest not in old)
    layers, sent, _ = await ship_layers(api, f"{LAYERED}:b", caps, lambda n, t: None)
    print(f"redeploy ship: {layers} layer(s), {sent} bytes; changed layer {changed} bytes",
          flush=True)
    return sent / changed


async def run(runs: int) -> tuple[list[float], float]:
    network = f"haloy-bench-{uuid.uuid4().hex[:8]}"
    cleanup = uuid.uuid4().hex[:10]
    docker_cli("network", "create", "--attachable", network)
    with tempfile.TemporaryDirectory(prefix="haloy-deploy-bench-") as tmp:
        root = Path(tmp)
        proxy = start_proxy(root / "proxy", "--no-access-log", https=False)
        try:
            async with deployer_harness(root, network, cleanup, proxy) as h, \
                    served(h, LayerStore(root / "layers", min_free_bytes=0),
                           h.runtime.images) as url, \
                    ApiClient(url, TOKEN) as api:
                times = await time_deploys(h, api, proxy.http_port, runs)
                ratio = await upload_ratio(api, (await api.version()).capabilities, root)
                return times, ratio
        finally:
            proxy.stop()
            ids = docker_cli("ps", "-aq", "--filter", f"network={network}", check=False).split()
            if ids:
                docker_cli("rm", "-f", *ids, check=False)
            docker_cli("network", "rm", network, check=False)
            docker_cli("rmi", f"{LAYERED}:a", f"{LAYERED}:b", check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    build_test_images()
    times, ratio = asyncio.run(run(args.runs))
    print(f"p50 {statistics.median(times):.2f} s max {max(times):.2f} s ({len(times)} runs) "
          f"uploaded/changed {ratio:.2f}")


if __name__ == "__main__":
    main()
