"""The haloyd API fuzzed from its committed OpenAPI document with schemathesis: never a 5xx.

A real `haloyd serve` (on an engine of the test's own, so pruning images or stopping random
app names touches nobody else) is driven by `schemathesis run docs/openapi.json`: valid and
invalid parameters, bodies and headers for every operation, checked for 5xx answers and for
responses that do not match the document (error bodies are the `{error, detail, hint}` shape
the document declares). Left out: operations that would reach outside this machine (registry
login, a deploy or rollback pulling a random image) and the long-lived streams (logs, exec,
tunnel), which have their own tests.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.scale import record_counts, size
from tests.fixtures.docker import PrivateDockerd
from tests.fixtures.haloyd_server import running_haloyd
from tests.fixtures.peers import peer_missing
from tests.fixtures.proxy import ProxyProcess

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
EXCLUDED = r"^/v1/(registries/login|deploy|apps/\{app\}/(rollback|logs|exec|tunnel)|server/logs)$"
RATE_PER_S = 18
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance," \
         "response_schema_conformance"


async def test_api_fuzzed_from_openapi_never_5xx(
    tmp_path: Path, private_dockerd: PrivateDockerd, docker_cleanup: str,
    proxy_factory: Callable[..., ProxyProcess],
) -> None:
    if not SCHEMATHESIS.exists():
        peer_missing("schemathesis is not installed (pip install -e '.[dev]')")
    examples, seconds = int(size(15, 200)), int(size(40, 300))
    proxy = proxy_factory("--no-access-log", https=False, data_dir=tmp_path / "data")
    async with running_haloyd(tmp_path, proxy, f"hly-{docker_cleanup}", f"t{docker_cleanup}",
                              docker_host=private_dockerd.host) as hd:
        argv = [
            str(SCHEMATHESIS), "run", str(ROOT / "docs" / "openapi.json"),
            "--url", f"http://127.0.0.1:{hd.port}", "-H", f"Authorization: Bearer {hd.token}",
            "--checks", CHECKS, "--max-examples", str(examples), "--max-time", str(seconds),
            "--exclude-path-regex", EXCLUDED, "--request-timeout", "20", "--seed", "8",
            "--suppress-health-check", "all", "--workers", "2",
            # Below haloyd's per-client limit (20/s), so operations are tested, not 429ed.
            "--rate-limit", f"{RATE_PER_S}/s",
            "--report-dir", str(tmp_path / "schemathesis"),
        ]
        env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.e2e.schemathesis_hooks",
               "NO_COLOR": "1", "PYTHONPATH": str(ROOT)}
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 120,
                              env=env, cwd=ROOT)
    (tmp_path / "schemathesis.out").write_text(proc.stdout + proc.stderr)
    print(proc.stdout)
    counts = re.search(r"(\d+) generated, (\d+) passed", proc.stdout)
    generated, passed = (int(counts[1]), int(counts[2])) if counts else (0, 0)
    record_counts(f"API fuzzed from docs/openapi.json (schemathesis, {examples} examples/op)",
                  generated, generated - passed, operations="15 of 22", exit_code=proc.returncode)
    assert proc.returncode == 0, "\n".join(proc.stdout.splitlines()[-40:])
