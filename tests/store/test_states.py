"""The deployment status table: every pair of statuses, legal or not."""

from __future__ import annotations

import pytest

from haloy.errors import StoreError
from haloy.store.states import Status, check_transition, is_terminal

P, R, S, F, B = (
    Status.PENDING,
    Status.RUNNING,
    Status.SUCCEEDED,
    Status.FAILED,
    Status.ROLLED_BACK,
)
LEGAL = {(P, R), (P, F), (R, S), (R, F), (S, B)}


@pytest.mark.parametrize("current", list(Status))
@pytest.mark.parametrize("new", list(Status))
def test_transition_table(current: Status, new: Status) -> None:
    if (current, new) in LEGAL:
        check_transition(current, new)
    else:
        with pytest.raises(StoreError) as err:
            check_transition(current, new)
        assert err.value.hint


@pytest.mark.parametrize(
    ("status", "terminal"), [(P, False), (R, False), (S, False), (F, True), (B, True)]
)
def test_terminal(status: Status, terminal: bool) -> None:
    assert is_terminal(status) is terminal
