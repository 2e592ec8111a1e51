"""How much fuzzing ``make test`` does under hypothesis: a fixed number of examples, the same
ones every run (derandomized, no example database), no per-example deadline (a busy machine
is slow, not wrong). The open-ended, coverage-guided runs are ``make fuzz``'s."""
from __future__ import annotations

from hypothesis import HealthCheck, settings


def in_suite(max_examples: int) -> settings:
    return settings(max_examples=max_examples, derandomize=True, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
