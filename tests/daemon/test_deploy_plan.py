"""The deploy plan and its revert, table-tested in memory."""

from __future__ import annotations

import pytest

from haloy.daemon.deploy_plan import Action, Step, plan, plan_revert

A = Action


def s(text: str) -> Step:
    """'start 1' / 'drain a' / 'hold' -> Step (numbers are new replicas, letters old ids)."""
    action, _, target = text.partition(" ")
    if not target:
        return Step(Action(action))
    if target.isdigit():
        return Step(Action(action), int(target))
    return Step(Action(action), old=target)


def steps(*texts: str) -> tuple[Step, ...]:
    return tuple(s(t) for t in texts)


UP1 = ("start 1", "gate 1", "join 1")
UP2 = ("start 2", "gate 2", "join 2")
UP3 = ("start 3", "gate 3", "join 3")

PLANS = [
    # strategy, old, replicas, expected
    ("rolling", [], 1, steps(*UP1)),
    ("rolling", ["a"], 1, steps(*UP1, "drain a", "stop a")),
    (
        "rolling",
        ["a", "b", "c"],
        3,
        steps(*UP1, "drain a", "stop a", *UP2, "drain b", "stop b", *UP3, "drain c", "stop c"),
    ),
    ("rolling", ["a", "b"], 1, steps(*UP1, "drain a", "stop a", "drain b", "stop b")),
    ("rolling", ["a"], 3, steps(*UP1, "drain a", "stop a", *UP2, *UP3)),
    ("replace", [], 2, steps("hold", *UP1, *UP2, "release")),
    (
        "replace",
        ["a", "b"],
        1,
        steps("hold", "drain a", "stop a", "drain b", "stop b", *UP1, "release"),
    ),
]


@pytest.mark.parametrize(("strategy", "old", "replicas", "expected"), PLANS)
def test_plan(strategy: str, old: list[str], replicas: int, expected: tuple[Step, ...]) -> None:
    assert plan(strategy, old, replicas) == expected


def test_rolling_keeps_one_replica_in_flight_at_a_time() -> None:
    # Never more than one new replica is being brought up before an old one goes away.
    steps_ = plan("rolling", ["a", "b", "c"], 3)
    started = [x.replica for x in steps_ if x.action is A.START]
    stopped = [x.old for x in steps_ if x.action is A.STOP]
    assert started == [1, 2, 3] and stopped == ["a", "b", "c"]
    order = [str(x) for x in steps_ if x.action in (A.START, A.STOP)]
    assert order == ["start new 1", "stop old a", "start new 2", "stop old b", "start new 3",
                     "stop old c"]


REVERTS = [
    # done (including the failed step), expected revert
    (steps("start 1"), steps("remove 1")),
    (steps("start 1", "gate 1"), steps("remove 1")),
    (steps(*UP1, "drain a"), steps("undrain a", "leave 1", "remove 1")),
    (
        steps(*UP1, "drain a", "stop a", "start 2", "gate 2"),
        steps("restart a", "undrain a", "leave 1", "remove 1", "remove 2"),
    ),
    (
        steps("hold", "drain a", "stop a", "drain b", "stop b", "start 1", "gate 1"),
        steps("restart a", "restart b", "undrain a", "undrain b", "remove 1", "release"),
    ),
    (steps("hold"), steps("release")),
    (steps("hold", *UP1, "release"), steps("leave 1", "remove 1")),
    ((), ()),
]


@pytest.mark.parametrize(("done", "expected"), REVERTS)
def test_revert(done: tuple[Step, ...], expected: tuple[Step, ...]) -> None:
    assert plan_revert(done) == expected


def test_revert_restores_old_before_removing_new() -> None:
    for done, _ in REVERTS:
        revert = [x.action for x in plan_revert(done)]
        if A.RESTART in revert and A.REMOVE in revert:
            assert revert.index(A.RESTART) < revert.index(A.REMOVE)


@pytest.mark.parametrize("replicas", [0, -1])
def test_replicas_must_be_positive(replicas: int) -> None:
    with pytest.raises(ValueError):
        plan("rolling", [], replicas)


def test_unknown_strategy() -> None:
    with pytest.raises(ValueError, match="blue-green"):
        plan("blue-green", [], 1)
