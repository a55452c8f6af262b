"""Renewal and backoff decisions (pure, injected time)."""

from __future__ import annotations

import datetime as dt

import pytest

from haloy.certs.issuer import parse_retry_after
from haloy.certs.policy import (
    BACKOFF_CAP,
    CLEAR,
    RATE_LIMIT_FLOOR,
    RenewalWindow,
    needs_certificate,
)

NOW = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


@pytest.mark.parametrize(
    ("not_after", "ari", "expected"),
    [
        (None, None, True),  # no certificate yet
        (NOW - DAY, None, True),  # expired
        (NOW + 29 * DAY, None, True),  # inside the 30-day window
        (NOW + 30 * DAY, None, False),  # exactly 30 days left: not yet
        (NOW + 60 * DAY, None, False),
        (NOW + 60 * DAY, RenewalWindow(NOW - DAY, NOW + DAY), True),  # ARI says now
        (NOW + 60 * DAY, RenewalWindow(NOW + DAY, NOW + 2 * DAY), False),  # ARI: later
        (NOW + 10 * DAY, RenewalWindow(NOW + DAY, NOW + 2 * DAY), True),  # 30-day rule wins
    ],
)
def test_needs_certificate(
    not_after: dt.datetime | None, ari: RenewalWindow | None, expected: bool
) -> None:
    assert needs_certificate(not_after, NOW, ari) is expected


def test_renewal_is_due_at_the_earlier_of_ari_start_and_30_days_out() -> None:
    # Due: not yet a second before, due a second after (exactly 30 days left is "not yet").
    second = dt.timedelta(seconds=1)
    for ari, due in (
        (None, NOW + 60 * DAY),
        (RenewalWindow(NOW, NOW + DAY), NOW),
        (RenewalWindow(NOW + 80 * DAY, NOW + 81 * DAY), NOW + 60 * DAY),
    ):
        assert not needs_certificate(NOW + 90 * DAY, due - second, ari), (ari, due)
        assert needs_certificate(NOW + 90 * DAY, due + second, ari), (ari, due)


def test_backoff_is_exponential_and_capped() -> None:
    b = CLEAR
    assert b.may_attempt(NOW)
    delays = []
    for _ in range(12):
        b = b.failed(NOW)
        assert b.next_attempt is not None
        delays.append(b.next_attempt - NOW)
    assert delays[:4] == [dt.timedelta(minutes=m) for m in (1, 2, 4, 8)]
    assert delays[-1] == BACKOFF_CAP
    assert not b.may_attempt(NOW) and b.may_attempt(NOW + BACKOFF_CAP)


def test_backoff_honours_retry_after_and_rate_limits() -> None:
    later = NOW + dt.timedelta(hours=3)
    assert CLEAR.failed(NOW, retry_after=later).next_attempt == later
    # A Retry-After sooner than our own backoff does not shorten it.
    assert CLEAR.failed(NOW, retry_after=NOW).next_attempt == NOW + dt.timedelta(minutes=1)
    assert CLEAR.failed(NOW, rate_limited=True).next_attempt == NOW + RATE_LIMIT_FLOOR


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("120", NOW + dt.timedelta(seconds=120)),
        ("Wed, 02 Jan 2030 00:00:00 GMT", NOW + DAY),
        ("soon", None),
    ],
)
def test_parse_retry_after(header: str | None, expected: dt.datetime | None) -> None:
    assert parse_retry_after(header, NOW) == expected
