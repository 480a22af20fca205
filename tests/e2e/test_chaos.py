"""Faults while signals flow: the chaos harness in its short mode, which includes issue 9's
"killing notify with SIGKILL four times while it delivers leaves every caregiver with exactly
one e-mail", on a stack with two instances of each consumer service of which one of each is
killed mid-stream (issue 16's replica check: 0 lost, 0 duplicate notifications). The run
starts a stack of its own (own ports, own data directory): its faults must not reach the
stack the other end-to-end tests share."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from deploy.chaos import options_from, run, summary
from deploy.mailbox import journal

pytestmark = pytest.mark.e2e


def test_a_short_chaos_run_loses_nothing_and_sends_nothing_twice(tmp_path: Path) -> None:
    data_dir = tmp_path / "stack"
    report = run(options_from(["--short", "--seed", "7", "--replicas", "2", "--data-dir", str(data_dir)]))
    print(summary(report))
    assert report.signals_accepted >= 50, "the load did not run"
    assert report.caregivers_erased >= 1, "no erasure was exercised"
    assert [s["scenario"] for s in report.schedule if s["recovered_in"] is None] == [], "not everything came back"
    assert report.lost == []
    assert report.duplicates == []
    assert report.sends_after_erasure == []
    assert report.capacity_broken == []
    assert report.signals_not_accepted == 0
    assert report.unknown_message_ids == 0

    [x4] = [step for step in report.schedule if step["scenario"] == "kill-notify-x4"]
    assert x4["note"] == "", f"notify was not always killed while it had e-mail to deliver: {x4['note']}"
    assert sum(a.startswith("notify had exited (killed by SIGKILL)") for a in report.supervisor_actions) == 4
    # One instance of each scaled-out service was killed, held down, and came back.
    assert "kill-replicas" in [step["scenario"] for step in report.schedule]
    for victim in ("screening-2", "matching-2", "notify-2", "municipalities-2"):
        assert f"{victim} had exited (killed by SIGKILL): restarted" in report.supervisor_actions, victim
    # Counted from what the SMTP server received, not from notify's own records.
    caregivers = set(report.caregiver_emails)  # those not erased
    message_ids: dict[str, set[str]] = defaultdict(set)
    for receipt in journal(data_dir / "mailbox"):
        for recipient in receipt["recipients"]:
            if recipient in caregivers:
                message_ids[recipient].add(receipt["message_id"])
    assert len(caregivers) >= 30, "the load did not run"
    assert sorted(caregivers - set(message_ids)) == [], "caregivers without an e-mail"
