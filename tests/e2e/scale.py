"""Scenario sizes (short in CI, long under bench/chaos) and the figures each scenario records.

`HALOY_CHAOS=long` selects the long counts; `HALOY_CHAOS_REPORT=<file>` makes every scenario
append one JSON line (name, sent, failed, max_ms, p99_ms, notes) that bench/chaos tabulates.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tests.e2e.loadgen import LoadReport


def is_long() -> bool:
    """True under bench/chaos (HALOY_CHAOS=long)."""
    return os.environ.get("HALOY_CHAOS", "") == "long"


def size(short: float, long: float) -> float:
    """The short or the long figure for this run."""
    return long if is_long() else short


def record(name: str, report: LoadReport, **notes: Any) -> None:
    """Print the scenario's figures and append them to $HALOY_CHAOS_REPORT when set."""
    print(f"[chaos] {name}: {report.summary()} {notes or ''}", flush=True)
    target = os.environ.get("HALOY_CHAOS_REPORT")
    if target:
        with Path(target).open("a") as out:
            out.write(json.dumps({"name": name, **report.row(), "notes": notes}) + "\n")


def record_counts(name: str, sent: int, failed: int, **notes: Any) -> None:
    """Like record(), for a scenario without latencies (a fuzz run): counts only."""
    print(f"[chaos] {name}: sent {sent} failed {failed} {notes or ''}", flush=True)
    target = os.environ.get("HALOY_CHAOS_REPORT")
    if target:
        row = {"name": name, "sent": sent, "failed": failed, "max_ms": "-", "p99_ms": "-"}
        with Path(target).open("a") as out:
            out.write(json.dumps({**row, "notes": notes}) + "\n")
