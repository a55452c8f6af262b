"""When to issue, renew and retry: pure decisions on an injected `now`, no I/O."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

# Let's Encrypt's own advice (and certbot's default): renew when 30 days remain, leaving
# several retry windows before a 90-day certificate expires.
RENEW_BEFORE = dt.timedelta(days=30)
# Periodic check interval: twice a day, as certbot's timer does.
CHECK_INTERVAL = dt.timedelta(hours=12)
# Backoff after a failed attempt: 1 min, 2, 4 ... capped at the check interval so a fixed
# problem is noticed the same day.
BACKOFF_BASE = dt.timedelta(minutes=1)
BACKOFF_CAP = dt.timedelta(hours=12)
# A rate-limit error without Retry-After: Let's Encrypt limits are per hour or per week; an hour
# never makes things worse.
RATE_LIMIT_FLOOR = dt.timedelta(hours=1)


@dataclass(frozen=True)
class RenewalWindow:
    """An ACME Renewal Information suggested window (RFC 9773)."""

    start: dt.datetime
    end: dt.datetime


def needs_certificate(
    not_after: dt.datetime | None,
    now: dt.datetime,
    ari: RenewalWindow | None = None,
    renew_before: dt.timedelta = RENEW_BEFORE,
) -> bool:
    """True when there is no certificate, or it is due for renewal."""
    if not_after is None or now >= not_after:
        return True
    if ari is not None and now >= ari.start:
        return True  # the CA asks for early renewal (e.g. a revocation is coming)
    return not_after - now < renew_before


@dataclass(frozen=True)
class Backoff:
    """Failure bookkeeping of one domain (immutable; `failed` returns the next state)."""

    failures: int = 0
    next_attempt: dt.datetime | None = None

    def may_attempt(self, now: dt.datetime) -> bool:
        """True when no backoff is pending at `now`."""
        return self.next_attempt is None or now >= self.next_attempt

    def failed(
        self, now: dt.datetime, retry_after: dt.datetime | None = None, rate_limited: bool = False
    ) -> Backoff:
        """The state after one more failure: exponential delay, never before Retry-After."""
        failures = self.failures + 1
        delay = min(BACKOFF_BASE * (2 ** (failures - 1)), BACKOFF_CAP)
        if rate_limited:
            delay = max(delay, RATE_LIMIT_FLOOR)
        at = now + delay
        if retry_after is not None and retry_after > at:
            at = retry_after
        return Backoff(failures, at)


CLEAR = Backoff()
