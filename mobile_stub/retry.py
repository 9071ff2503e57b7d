"""When the phone sends again, and how long it waits first. Pure functions only.

The server's answers (api/submissions/routes.py) sort into three:

- delivered: 2xx (202 stored now, 200 stored by an earlier request with this id);
- final: the submission or the device token is wrong and re-sending cannot help
  (400, 401, 403, 404, 413, 415, 422); the voter is told the server's reason;
- retry, with the same submission id: everything else, above all 409 (the first
  request with this id is still being stored), 429 and 503 (come back after
  ``Retry-After``), other 5xx, and no answer at all (the network).

An unknown 4xx is retried rather than dropped: losing a ballot is worse than a
phone that keeps asking (its waits are capped, and the server de-duplicates).
"""

from __future__ import annotations

import email.utils
import enum
from dataclasses import dataclass


class Decision(enum.Enum):
    DELIVERED = "delivered"
    RETRY = "retry"
    FINAL = "final"


# The client errors after which the same request can never succeed.
FINAL_CLIENT_ERRORS = frozenset({400, 401, 403, 404, 413, 415, 422})


def decide(http_status: int | None) -> Decision:
    """What to do after an answer (None: no answer reached the phone). Pure."""
    if http_status is None:
        return Decision.RETRY
    if 200 <= http_status < 300:
        return Decision.DELIVERED
    if http_status in FINAL_CLIENT_ERRORS:
        return Decision.FINAL
    return Decision.RETRY


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delay-seconds or an HTTP date,
    RFC 9110 §10.2.3), at ``now`` (Unix seconds); None when absent or unreadable.
    A date in the past means "now" (0). Pure."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP date is always GMT
        return None
    return max(0.0, when.timestamp() - now)


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter (a uniform wait between 0 and
    ``base * 2**(attempt-1)``, capped): phones that lost the network together do
    not come back together.

    Defaults for a phone: the first wait averages half a second, about a dropped
    packet on a 2G link; the cap bounds how long after the network returns a phone
    that has been offline for days notices it (at most 5 minutes), while keeping a
    million phones' retries during a cut to one per phone per few minutes.
    """

    base: float = 1.0
    cap: float = 300.0


def next_delay(
    attempt: int, jitter: float, backoff: Backoff, retry_after: float | None = None
) -> float:
    """Seconds to wait after the ``attempt``-th failed attempt (1 for the first).
    ``jitter`` is a uniform draw in [0, 1). The server's ``Retry-After`` is a floor:
    the phone never comes back sooner than it was asked to, even above the cap. Pure."""
    ceiling = min(backoff.cap, backoff.base * 2.0 ** min(max(attempt, 1) - 1, 64))
    delay = jitter * ceiling
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay
