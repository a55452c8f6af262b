"""Rise/fall state machine: table tests (HAProxy semantics)."""

from __future__ import annotations

import pytest

from haloy.health.state import HealthState, advance


def run(results: str, rise: int = 2, fall: int = 3) -> list[str]:
    state = HealthState()
    seen: list[str] = []
    for r in results:
        state = advance(state, r == "+", rise=rise, fall=fall, error=None if r == "+" else "boom")
        seen.append(state.status)
    return seen


@pytest.mark.parametrize(
    ("results", "statuses"),
    [
        ("+", ["up"]),
        ("--+", ["starting", "starting", "up"]),
        ("+--", ["up", "up", "up"]),
        ("+---", ["up", "up", "up", "down"]),
        ("+-+--", ["up", "up", "up", "up", "up"]),  # a success resets the fail streak
        ("+----+", ["up", "up", "up", "down", "down", "down"]),
        ("+---++", ["up", "up", "up", "down", "down", "up"]),
        ("+---+-++", ["up", "up", "up", "down", "down", "down", "down", "up"]),
    ],
)
def test_transitions(results: str, statuses: list[str]) -> None:
    assert run(results) == statuses


def test_rise_and_fall_of_one() -> None:
    assert run("+-+", rise=1, fall=1) == ["up", "down", "up"]


def test_counters_and_last_error() -> None:
    state = HealthState()
    for ok in (True, False, False):
        state = advance(state, ok, rise=2, fall=3, error=None if ok else "HTTP 500")
    assert (state.checks, state.failures, state.fail_streak, state.last_error) == (
        3,
        2,
        2,
        "HTTP 500",
    )
    assert state.routable
    state = advance(state, True, rise=2, fall=3)
    assert state.last_error is None and state.fail_streak == 0
