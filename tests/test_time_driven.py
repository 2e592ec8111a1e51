"""Time-driven logic, with exact times or on ``twisted.internet.task.Clock``: the retry
backoff and the reception-awareness budget, the outbox poller, the scheduled evidence jobs.

Nothing here waits for real time to pass, so a busy machine cannot change a verdict.
"""
from __future__ import annotations

import datetime as dt

import pytest
from twisted.internet import defer, task

from gateway.connectors.folder_client import drop_document
from gateway.daemon import Gateway
from gateway.evidence.scheduler import ThreadedJob
from gateway.outbox import OutboxPoller
from gateway.retry_policy import decide_retry
from partners.pmode import RetryPolicy
from tests.harness import write_pair

T0 = dt.datetime(2026, 12, 4, 8, 0, tzinfo=dt.timezone.utc)
POLICY = RetryPolicy(max_attempts=5, initial_interval=5.0, multiplier=2.0, max_interval=12.0, max_age=3600.0)


def _after(attempts: int, now: dt.datetime, *, retry_base: int = 0, since: dt.datetime = T0, jitter: float = 1.0,
           code: str | None = None):
    return decide_retry(policy=POLICY, pmode_id="p1", attempts=attempts, retry_base=retry_base, since=since,
                        now=now, last_error="HTTP 503", last_error_code=code, jitter=jitter)


def test_backoff_grows_by_the_multiplier_up_to_the_cap_and_jitter_scales_it():
    delays = [(_after(n, T0).next_attempt_at - T0).total_seconds() for n in range(1, 5)]
    assert delays == [5.0, 10.0, 12.0, 12.0]
    assert (_after(1, T0, jitter=0.8).next_attempt_at - T0).total_seconds() == pytest.approx(4.0)
    assert (_after(2, T0, jitter=1.2).next_attempt_at - T0).total_seconds() == pytest.approx(12.0)


def test_budget_of_attempts_gives_up_with_missing_receipt():
    decision = _after(5, T0 + dt.timedelta(seconds=50))
    assert decision.gives_up and decision.error_code == "EBMS:0301"
    assert decision.detail.startswith("EBMS:0301 gave up after 5 attempt(s) over 50s (PMode p1: max_attempts 5")
    assert decision.detail.endswith("last error: HTTP 503")
    assert _after(5, T0, code="EBMS:0302").error_code == "EBMS:0302"    # the last answer was a bad receipt


def test_budget_of_age_gives_up_at_max_age_to_the_second():
    assert not _after(1, T0 + dt.timedelta(seconds=3599)).gives_up
    assert _after(1, T0 + dt.timedelta(seconds=3600)).gives_up


def test_an_operator_retry_grants_a_fresh_budget():
    later = T0 + dt.timedelta(days=2)
    # 7 attempts, 5 of them before the operator's retry, budget counted from the retry
    decision = _after(7, later + dt.timedelta(seconds=30), retry_base=5, since=later)
    assert not decision.gives_up and decision.next_attempt_at == later + dt.timedelta(seconds=40)


def test_outbox_is_drained_at_start_then_once_per_interval(tmp_path, pki):
    a, _b = write_pair(tmp_path, pki)
    gateway = Gateway(a.config())
    clock = task.Clock()
    poller = OutboxPoller(gateway.connector, gateway.outbound, gateway.party_domain, 5.0, clock=clock,
                          run_blocking=defer.maybeDeferred, watch=False)      # the timer alone
    outbox = a.config().folder.outbox
    try:
        poller.startService()                          # the first poll runs at start: nothing there
        drop_document(outbox, "d.xml", b"<doc>poll</doc>", partner="bb-nsw", document_type="test-cert",
                      reference="POLL")
        clock.advance(4.9)
        assert gateway.store.find(None, "POLL") == []
        clock.advance(0.1)
        assert [m.status for m in gateway.store.find(None, "POLL")] == ["queued"]
        assert (outbox / "sent" / "d.xml").exists()
    finally:
        poller.stopService()
        gateway.store.close()


def test_a_failing_scheduled_job_runs_again_at_every_tick():
    clock = task.Clock()
    calls = []

    def job():
        calls.append(clock.seconds())
        raise RuntimeError("TSA down")

    service = ThreadedJob("evidence-timestamp", 60.0, job, clock=clock, run_blocking=defer.maybeDeferred)
    service.startService()
    for _ in range(3):
        clock.advance(60)
    service.stopService()
    assert calls == [0.0, 60.0, 120.0, 180.0]


def test_the_daemon_stops_its_services_one_after_another_in_reverse():
    """The store must not close while the sender still records its last sends: each child
    stops only once the one started after it has finished stopping."""
    from twisted.application import service

    from gateway.daemon import SequentialServices
    stopped, held = [], defer.Deferred()

    class Child(service.Service):
        def __init__(self, name, result=None):
            self.setName(name)
            self.result = result

        def stopService(self):
            super().stopService()
            stopped.append(self.name)
            return self.result

    top = SequentialServices()
    for child in (Child("store"), Child("sender", held), Child("poller")):
        child.setServiceParent(top)
    top.startService()
    done = top.stopService()
    assert stopped == ["poller", "sender"] and not done.called     # the store waits for the sender
    held.callback(None)
    assert stopped == ["poller", "sender", "store"] and done.called
