"""When to try a send again, and when reception awareness gives up (AS4 §3.2).

A pure function of the attempt count, the message's age and the PMode's policy, given "now"
and the jitter factor by the caller: the sender passes the wall clock and a random factor,
tests pass exact times, so the budget and the backoff are checked to the second without
waiting for either.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from gateway.receipts import INVALID_RECEIPT, MISSING_RECEIPT
from partners.pmode import RetryPolicy

JITTER = (0.8, 1.2)          # the range the sender draws the jitter factor from


@dataclass(frozen=True)
class RetryDecision:
    """Either ``next_attempt_at`` (try again then) or ``error_code`` + ``detail`` (give up)."""
    next_attempt_at: dt.datetime | None = None
    error_code: str | None = None
    detail: str = ""

    @property
    def gives_up(self) -> bool:
        return self.next_attempt_at is None


def decide_retry(*, policy: RetryPolicy, pmode_id: str, attempts: int, retry_base: int, since: dt.datetime,
                 now: dt.datetime, last_error: str, last_error_code: str | None, jitter: float) -> RetryDecision:
    """After a failed attempt: ``attempts`` made so far, ``retry_base`` of them before the last
    operator retry (which grants a fresh budget), ``since`` when the budget started."""
    used = attempts - retry_base
    age = (now - since).total_seconds()
    if used >= policy.max_attempts or age >= policy.max_age:
        code = INVALID_RECEIPT if last_error_code == INVALID_RECEIPT else MISSING_RECEIPT
        return RetryDecision(error_code=code, detail=(
            f"{code} gave up after {used} attempt(s) over {age:.0f}s (PMode {pmode_id}: max_attempts "
            f"{policy.max_attempts}, max_age {policy.max_age:.0f}s); last error: {last_error}"))
    delay = policy.delay_after(used) * jitter          # jitter spreads the retries of many senders
    return RetryDecision(next_attempt_at=now + dt.timedelta(seconds=delay))
