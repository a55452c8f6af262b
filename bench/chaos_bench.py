"""bench/chaos: run the tests/e2e reliability scenarios in their long form and print a table.

Each scenario drives the real haloy-proxy (and, for deploys, haloyd's deployer on the real
dockerd) under the bounded load generator (tests/e2e/loadgen.py) and records requests sent,
failed (non-2xx or connection error), max and p99 latency. `--short` runs the CI sizes.
Exit status is pytest's: any failed scenario fails the run. The table is Markdown, ready for
docs/reliability.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def table(rows: list[dict[str, object]]) -> str:
    """The recorded figures as a Markdown table."""
    lines = ["| scenario | sent | failed | max ms | p99 ms | notes |",
             "|---|---:|---:|---:|---:|---|"]
    for r in rows:
        extra = r.get("notes")
        notes = ", ".join(f"{k}={v}" for k, v in extra.items()) if isinstance(extra, dict) else ""
        lines.append(f"| {r['name']} | {r['sent']} | {r['failed']} | {r['max_ms']} | "
                     f"{r['p99_ms']} | {notes} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="CI sizes instead of the long ones")
    parser.add_argument("-k", dest="select", help="pytest -k expression (a subset of scenarios)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="haloy-chaos-") as tmp:
        report = Path(tmp) / "report.jsonl"
        env = {**os.environ, "HALOY_CHAOS_REPORT": str(report)}
        if not args.short:
            env["HALOY_CHAOS"] = "long"
        cmd = [sys.executable, "-m", "pytest", "tests/e2e", "tests/config/test_fuzz.py", "-q",
               "-p", "no:cacheprovider", "-rxXfE"]
        if not args.short:
            cmd += ["-o", "timeout=1800"]  # long scenarios outlast the CI per-test limit
        if args.select:
            cmd += ["-k", args.select]
        print("$ " + " ".join(cmd), flush=True)
        result = subprocess.run(cmd, cwd=ROOT, env=env, check=False)
        rows = ([json.loads(line) for line in report.read_text().splitlines()]
                if report.exists() else [])
    print()
    print(table(rows))
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
