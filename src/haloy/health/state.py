"""Backend health as a rise/fall state machine (pure), with HAProxy semantics.

    status     check ok                         check failed
    starting   -> up (first success routes)     starting (not routed until a success)
    up         up (fail streak reset)           fail streak += 1; >= fall -> down
    down       ok streak += 1; >= rise -> up    down (ok streak reset)

A new container gets traffic only after its first successful check; after that it takes
`fall` consecutive failures to leave rotation and `rise` consecutive successes to come back,
exactly like HAProxy's `fall`/`rise` server options.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

Status = Literal["starting", "up", "down"]


@dataclass(frozen=True)
class HealthState:
    """Health of one backend after some number of checks."""

    status: Status = "starting"
    ok_streak: int = 0
    fail_streak: int = 0
    checks: int = 0
    failures: int = 0
    last_error: str | None = None

    @property
    def routable(self) -> bool:
        """Whether the backend may receive traffic."""
        return self.status == "up"


def advance(
    state: HealthState, ok: bool, *, rise: int, fall: int, error: str | None = None
) -> HealthState:
    """The state after one check result."""
    if ok:
        ok_streak, fail_streak = state.ok_streak + 1, 0
        if state.status == "starting" or (state.status == "down" and ok_streak >= rise):
            status: Status = "up"
        else:
            status = state.status
        return replace(
            state,
            status=status,
            ok_streak=ok_streak,
            fail_streak=fail_streak,
            checks=state.checks + 1,
            last_error=None,
        )
    ok_streak, fail_streak = 0, state.fail_streak + 1
    status = "down" if state.status == "up" and fail_streak >= fall else state.status
    return replace(
        state,
        status=status,
        ok_streak=ok_streak,
        fail_streak=fail_streak,
        checks=state.checks + 1,
        failures=state.failures + 1,
        last_error=error or "failed",
    )
