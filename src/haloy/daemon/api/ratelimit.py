"""Per-client rate limiting: a token bucket per client key (pure), kept in a bounded table.

A bucket holds up to `burst` tokens and refills at `rate` tokens per second; each request
takes one. Time is passed in, so the arithmetic is tested without sleeping.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

# A deploy makes one check call plus one PUT per missing layer, then follows events: bursts of
# a few dozen requests are normal, sustained floods are not.
DEFAULT_RATE_PER_S = 20.0
DEFAULT_BURST = 100
# Bound on remembered clients, so a spray of source addresses cannot grow memory without end.
DEFAULT_MAX_CLIENTS = 10_000


@dataclass(frozen=True)
class RatePolicy:
    """How many requests a client may make: `burst` at once, `rate` per second sustained."""

    rate: float = DEFAULT_RATE_PER_S
    burst: int = DEFAULT_BURST


@dataclass(frozen=True)
class Bucket:
    """A client's tokens at time `updated` (seconds, monotonic)."""

    tokens: float
    updated: float


@dataclass(frozen=True)
class Decision:
    """The answer for one request: allowed or not, the new bucket, and when to retry."""

    allowed: bool
    bucket: Bucket
    retry_after: float


def take(policy: RatePolicy, bucket: Bucket | None, now: float) -> Decision:
    """Refill `bucket` up to `now` and try to take one token from it."""
    if bucket is None:
        tokens = float(policy.burst)
    else:
        elapsed = max(0.0, now - bucket.updated)
        tokens = min(float(policy.burst), bucket.tokens + elapsed * policy.rate)
    if tokens >= 1.0:
        return Decision(True, Bucket(tokens - 1.0, now), 0.0)
    wait = (1.0 - tokens) / policy.rate if policy.rate > 0 else math.inf
    return Decision(False, Bucket(tokens, now), wait)


class RateLimiter:
    """Buckets per client key; the least recently seen client is forgotten first."""

    def __init__(self, policy: RatePolicy, max_clients: int = DEFAULT_MAX_CLIENTS) -> None:
        self.policy = policy
        self._max = max_clients
        self._buckets: OrderedDict[str, Bucket] = OrderedDict()

    def check(self, key: str, now: float) -> Decision:
        """Take a token for `key` at `now`."""
        decision = take(self.policy, self._buckets.pop(key, None), now)
        self._buckets[key] = decision.bucket
        if len(self._buckets) > self._max:
            self._buckets.popitem(last=False)
        return decision

    def __len__(self) -> int:
        return len(self._buckets)
