"""The steps of a deployment, and of undoing a failed one, as plain data (pure).

rolling (default), one replica at a time as the seed draws it:

    for i in 1..max(new, old):
        start new i -> gate new i -> join new i        (when i <= new replicas)
        drain old i -> stop old i                      (when i <= old replicas)

replace: hold the route -> drain + stop every old -> start, gate, join every new -> release.

A failure at any step is undone by `plan_revert(done)`: stopped old containers are restarted
(they are only removed once the deployment succeeded), draining ones serve again, new ones
leave the route and are removed, and a hold is released last so held requests reach the old
version. The deployer executes steps; this module only decides their order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class Action(StrEnum):
    """One thing the deployer does."""

    HOLD = "hold"  # route held: requests wait instead of failing
    START = "start"  # create + start new replica i
    GATE = "gate"  # health gate of new replica i
    JOIN = "join"  # new replica i becomes an active backend
    DRAIN = "drain"  # old container marked draining (no new requests)
    STOP = "stop"  # old container stopped (kept until success)
    RELEASE = "release"  # hold lifted
    # Revert-only actions.
    RESTART = "restart"  # a stopped old container runs again
    UNDRAIN = "undrain"  # an old container is an active backend again
    LEAVE = "leave"  # new replica i leaves the route
    REMOVE = "remove"  # new replica i is removed


@dataclass(frozen=True)
class Step:
    """One action on new replica `replica` (1-based) or old container `old`."""

    action: Action
    replica: int | None = None
    old: str | None = None

    def __str__(self) -> str:
        if self.replica:
            return f"{self.action.value} new {self.replica}"
        if self.old:
            return f"{self.action.value} old {self.old[:12]}"
        return self.action.value


def _bring_up(i: int) -> list[Step]:
    return [Step(Action.START, i), Step(Action.GATE, i), Step(Action.JOIN, i)]


def _take_down(old: str) -> list[Step]:
    return [Step(Action.DRAIN, old=old), Step(Action.STOP, old=old)]


def plan_rolling(old: Sequence[str], replicas: int) -> tuple[Step, ...]:
    """Replace `old` containers by `replicas` new ones, one at a time."""
    _check(replicas)
    steps: list[Step] = []
    for i in range(1, max(replicas, len(old)) + 1):
        if i <= replicas:
            steps += _bring_up(i)
        if i <= len(old):
            steps += _take_down(old[i - 1])
    return tuple(steps)


def plan_replace(old: Sequence[str], replicas: int) -> tuple[Step, ...]:
    """Hold the route, take every old container down, bring every new one up, release."""
    _check(replicas)
    steps = [Step(Action.HOLD)]
    for o in old:
        steps += _take_down(o)
    for i in range(1, replicas + 1):
        steps += _bring_up(i)
    steps.append(Step(Action.RELEASE))
    return tuple(steps)


def plan(strategy: str, old: Sequence[str], replicas: int) -> tuple[Step, ...]:
    """The plan for `strategy` ("rolling" or "replace")."""
    if strategy == "replace":
        return plan_replace(old, replicas)
    if strategy == "rolling":
        return plan_rolling(old, replicas)
    raise ValueError(f"unknown deployment strategy {strategy!r}")


def plan_revert(done: Sequence[Step]) -> tuple[Step, ...]:
    """Undo the steps in `done` (those that completed, plus the one that failed)."""
    stopped = [s.old for s in done if s.action is Action.STOP and s.old]
    drained = [s.old for s in done if s.action is Action.DRAIN and s.old]
    joined = [s.replica for s in done if s.action is Action.JOIN and s.replica]
    started = [s.replica for s in done if s.action is Action.START and s.replica]
    held = any(s.action is Action.HOLD for s in done) and not any(
        s.action is Action.RELEASE for s in done
    )
    # Old ones first: the previous version serves again before anything new goes away.
    steps = [Step(Action.RESTART, old=o) for o in stopped]
    steps += [Step(Action.UNDRAIN, old=o) for o in drained]
    steps += [Step(Action.LEAVE, i) for i in joined]
    steps += [Step(Action.REMOVE, i) for i in started]
    if held:
        steps.append(Step(Action.RELEASE))
    return tuple(steps)


def _check(replicas: int) -> None:
    if replicas < 1:
        raise ValueError(f"replicas must be at least 1, got {replicas}")
