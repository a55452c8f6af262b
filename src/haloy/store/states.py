"""Deployment statuses and the legal moves between them, as one table (pure).

    pending ──▶ running ──▶ succeeded ──▶ rolled_back
       │           │
       └───────────┴──▶ failed

`rolled_back` marks a succeeded deployment that a later rollback replaced. `failed` and
`rolled_back` are terminal. A deployment whose haloyd died mid-way moves to `failed` with the
reason "interrupted" when haloyd starts again.
"""

from __future__ import annotations

from enum import StrEnum

from haloy.errors import StoreError


class Status(StrEnum):
    """Where a deployment is in its life."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"


TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.PENDING: frozenset({Status.RUNNING, Status.FAILED}),
    Status.RUNNING: frozenset({Status.SUCCEEDED, Status.FAILED}),
    Status.SUCCEEDED: frozenset({Status.ROLLED_BACK}),
    Status.FAILED: frozenset(),
    Status.ROLLED_BACK: frozenset(),
}

# Deployments that were in flight: a restart of haloyd interrupts them.
IN_FLIGHT: frozenset[Status] = frozenset({Status.PENDING, Status.RUNNING})


def is_terminal(status: Status) -> bool:
    """True when no further move is allowed from `status`."""
    return not TRANSITIONS[status]


def check_transition(current: Status, new: Status) -> None:
    """Raise StoreError unless moving from `current` to `new` is legal."""
    if new not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "none (terminal)"
        raise StoreError(
            f"illegal deployment status change {current} -> {new}",
            hint=f"from {current} the allowed statuses are: {allowed}",
        )
