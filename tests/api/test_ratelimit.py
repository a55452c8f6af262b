"""The token bucket, table-tested with explicit time (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from haloy.daemon.api.ratelimit import Bucket, RateLimiter, RatePolicy, take

POLICY = RatePolicy(rate=2.0, burst=3)


@pytest.mark.parametrize(
    ("bucket", "now", "allowed", "tokens_after", "retry_after"),
    [
        (None, 0.0, True, 2.0, 0.0),  # a new client starts with a full burst
        (Bucket(3.0, 0.0), 0.0, True, 2.0, 0.0),
        (Bucket(1.0, 0.0), 0.0, True, 0.0, 0.0),
        (Bucket(0.0, 0.0), 0.0, False, 0.0, 0.5),  # empty: one token takes 1/rate s
        (Bucket(0.5, 0.0), 0.0, False, 0.5, 0.25),
        (Bucket(0.0, 0.0), 0.5, True, 0.0, 0.0),  # refilled one token in 0.5 s
        (Bucket(0.0, 0.0), 0.25, False, 0.5, 0.25),
        (Bucket(0.0, 0.0), 100.0, True, 2.0, 0.0),  # refill is capped at the burst
        (Bucket(2.0, 5.0), 4.0, True, 1.0, 0.0),  # a clock step back never adds tokens
    ],
)
def test_take(
    bucket: Bucket | None, now: float, allowed: bool, tokens_after: float, retry_after: float
) -> None:
    d = take(POLICY, bucket, now)
    assert d.allowed is allowed
    assert d.bucket == Bucket(pytest.approx(tokens_after), now)  # type: ignore[arg-type]
    assert d.retry_after == pytest.approx(retry_after)


def test_zero_rate_never_refills() -> None:
    d = take(RatePolicy(rate=0.0, burst=1), Bucket(0.0, 0.0), 1e9)
    assert not d.allowed and d.retry_after == float("inf")


def test_limiter_keeps_clients_apart() -> None:
    limiter = RateLimiter(RatePolicy(rate=1.0, burst=2))
    assert [limiter.check("a", 0.0).allowed for _ in range(3)] == [True, True, False]
    assert limiter.check("b", 0.0).allowed
    assert limiter.check("a", 1.0).allowed


def test_limiter_forgets_least_recent_client() -> None:
    limiter = RateLimiter(RatePolicy(rate=1.0, burst=1), max_clients=2)
    limiter.check("a", 0.0)
    limiter.check("b", 0.0)
    limiter.check("a", 0.0)  # a is now the most recent
    limiter.check("c", 0.0)  # evicts b
    assert len(limiter) == 2
    assert limiter.check("b", 0.0).allowed  # b starts fresh
    assert not limiter.check("c", 0.0).allowed


@given(
    rate=st.floats(min_value=0.1, max_value=100),
    burst=st.integers(min_value=1, max_value=50),
    gaps=st.lists(st.floats(min_value=0, max_value=2), min_size=1, max_size=200),
)
def test_never_more_than_burst_plus_refill(rate: float, burst: int, gaps: list[float]) -> None:
    policy = RatePolicy(rate=rate, burst=burst)
    bucket, now, allowed = None, 0.0, 0
    for gap in gaps:
        now += gap
        decision = take(policy, bucket, now)
        bucket = decision.bucket
        allowed += decision.allowed
        assert 0.0 <= bucket.tokens <= burst
    assert allowed <= burst + rate * now + 1e-6
