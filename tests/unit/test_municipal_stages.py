"""The stages signals records beyond notification (a referral's answer, the follow-up, a due
re-screen): they show in the status view and they never move the status back."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from services.signals import domain
from services.signals.domain import STAGE_RANK, Stage

T0 = datetime(2026, 11, 20, 10, tzinfo=UTC)


def _stage(stage: str, minutes: int, **detail) -> dict:
    return {"stage": stage, "occurred_at": T0 + timedelta(minutes=minutes), "detail": detail}


def test_referrals_show_their_latest_status_and_the_follow_up_its_answer():
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    signal = {"id": uuid.uuid4(), "status": "notified", "received_at": T0, "case_id": None}
    stages = [
        _stage("received", 0),
        _stage(
            "referral",
            5,
            referral_id=first,
            service_name="Respijthuis",
            status="requested",
            reason_code=None,
            updated_by="system",
        ),
        _stage(
            "referral",
            6,
            referral_id=second,
            service_name="Mantelzorgcafé",
            status="requested",
            reason_code=None,
            updated_by="system",
        ),
        _stage(
            "referral",
            9,
            referral_id=first,
            service_name="Respijthuis",
            status="rejected",
            reason_code="no_capacity",
            updated_by="provider",
        ),
        _stage("follow_up", 20, support_arrived=False),
        _stage("rescreen_due", 30, risk_level="overburdened"),
    ]
    view = domain.status_view(domain.Signal(**signal), [domain.StageRecord(**s) for s in stages])
    assert [(r.service_name, r.status.value, r.reason_code) for r in view.referrals] == [
        ("Respijthuis", "rejected", "no_capacity"),
        ("Mantelzorgcafé", "requested", None),
    ]
    assert view.referrals[0].updated_by == "provider" and view.referrals[0].at == T0 + timedelta(minutes=9)
    assert view.follow_up is not None and view.follow_up.support_arrived is False
    summaries = {t.stage: t.summary for t in view.timeline}
    assert summaries["follow_up"] == "support did not arrive"
    assert summaries["rescreen_due"] == "re-screening due"  # the case's level is not the referrer's to see
    assert [t.summary for t in view.timeline if t.stage == "referral"][-1] == "Respijthuis: rejected"


def test_the_new_stages_never_move_the_status_back():
    furthest = max(STAGE_RANK.values())
    for stage in (Stage.REFERRAL, Stage.FOLLOW_UP, Stage.RESCREEN_DUE):
        assert STAGE_RANK[stage] < STAGE_RANK[Stage.RECEIVED] < furthest
