"""The referrer's status view shows only what follows from its own signal, and erasure
requests are recognised by their meaning (pure parts of the boundaries)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from services.signals import domain
from shared.contracts import SignalScreened

DEMO_SIGNAL = json.loads((Path(__file__).parents[2] / "deploy" / "demo" / "signal.json").read_text())
T0 = datetime(2026, 11, 20, 10, tzinfo=UTC)
CASE = uuid.uuid4()


def _stage(stage: str, minutes: int, detail: dict) -> dict:
    return {"stage": stage, "occurred_at": T0 + timedelta(minutes=minutes), "detail": detail}


def test_the_view_shows_no_case_and_an_escalation_only_as_a_consultant_involved():
    signal = {"id": uuid.uuid4(), "status": "escalated", "received_at": T0, "case_id": CASE}
    # As stages recorded before the boundary held them: the case id, the case's reason and level.
    stages = [
        _stage("received", 0, {}),
        _stage(
            "screened", 1, {"result": {"risk_level": "at_risk", "reasons": ["observed tension"]}, "case_id": str(CASE)}
        ),
        _stage(
            "escalated",
            2,
            {"reason": "2 signals from 2 independent sources (gp, neighbourhood team)", "risk_level": "crisis"},
        ),
        _stage("rescreen_due", 3, {"risk_level": "crisis"}),
    ]
    view = domain.status_view(domain.Signal(**signal), [domain.StageRecord(**s) for s in stages])
    text = view.model_dump_json()
    assert str(CASE) not in text and "case_id" not in text
    assert "crisis" not in text and "independent" not in text
    assert view.escalation == {"at": T0 + timedelta(minutes=2), "summary": domain.CONSULTANT_INVOLVED}
    assert view.screening is not None and view.screening.risk_level.value == "at_risk"


def test_the_same_erasure_request_has_one_digest_whatever_the_order():
    requester, a, b = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    digest = domain.erasure_request_digest(requester, "signals", ["p1", "p2"], [a, b])
    assert digest == domain.erasure_request_digest(requester, "signals", ["p2", "p1"], [b, a])
    assert digest != domain.erasure_request_digest(uuid.uuid4(), "signals", ["p1", "p2"], [a, b])
    assert digest != domain.erasure_request_digest(requester, "caregiver", ["p1", "p2"], [a, b])
    assert digest != domain.erasure_request_digest(requester, "signals", ["p1", "p2"], None)


def test_the_audit_names_a_caregiver_by_a_digest_of_the_pseudonym():
    assert "pseudonym-of-anna" not in domain.subject_digest("pseudonym-of-anna")
    assert domain.subject_digest("pseudonym-of-anna") == domain.subject_digest("pseudonym-of-anna")


def test_a_screened_event_from_before_own_result_still_validates():
    signal = DEMO_SIGNAL | {
        "signal_id": str(uuid.uuid4()),
        "organisation_id": str(uuid.uuid4()),
        "organisation_name": "GP",
        "received_at": T0.isoformat(),
    }
    event = {
        "signal_id": signal["signal_id"],
        "case_id": str(CASE),
        "screened_at": T0.isoformat(),
        "result": {"risk_level": "at_risk"},
        "signal": signal,
    }
    assert SignalScreened.model_validate(event).own_result is None
