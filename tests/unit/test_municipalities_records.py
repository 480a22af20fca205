"""From one pipeline event to one anonymous record: only allow-listed, coarsened values;
nothing identifying; events that do not say their municipality give no record."""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import UTC, datetime, timedelta

from deploy.stack import REPO
from services.municipalities import records
from shared.contracts import FollowUpRecorded, MatchesProposed, ReferralUpdated, SignalReceived, SignalScreened

T0 = datetime(2026, 11, 24, 10, 15, tzinfo=UTC)
BODY = json.loads((REPO / "deploy" / "demo" / "signal.json").read_text())
SIGNAL = SignalReceived.model_validate(
    {
        **BODY,
        "signal_id": uuid.uuid4(),
        "organisation_id": uuid.uuid4(),
        "organisation_name": "Praktijk",
        "received_at": T0,
    }
)
RESULT = {"risk_level": "overburdened", "needs": ["respite_care", "emotional_support"], "score": 11}
IDS = {"signal_id": SIGNAL.signal_id, "case_id": uuid.uuid4()}


def _identifying_values() -> list[str]:
    c = BODY["caregiver"]
    return [
        c["name"],
        c["email"],
        c["phone"],
        c["postcode"],
        "1961",
        BODY["note"],
        BODY["source"]["reference"],
        str(SIGNAL.signal_id),
        str(IDS["case_id"]),
        "pseudonym-of-anna",
        "10:15",
    ]


def _released_part(record: records.Record) -> str:
    return json.dumps({k: v for k, v in dataclasses.asdict(record).items() if k not in ("person", "arrived")})


def test_a_screened_signal_becomes_a_coarse_record_with_nothing_identifying():
    event = SignalScreened(**IDS, screened_at=T0, result=RESULT, signal=SIGNAL)
    record = records.from_screened(event, "pseudonym-of-anna", T0)
    assert (record.kind, record.municipality_code, record.month, record.week) == (
        "signal.screened",
        "GM0327",
        "2026-11",
        "2026-W48",
    )
    assert (record.area, record.age_band, record.source_kind, record.risk_level) == (
        "WK032700",
        "60-69",
        "gp",
        "overburdened",
    )
    assert record.needs == ("emotional_support", "respite_care")
    assert record.person == records.person_token("GM0327", "pseudonym-of-anna") != "pseudonym-of-anna"
    released = _released_part(record)
    assert not [v for v in _identifying_values() if v in released]


def test_matches_give_categories_a_no_match_code_and_an_hours_band():
    match = {
        "service_id": "s1",
        "service_name": "Respijthuis Anna",
        "organization_name": "Org",
        "category": "respite_care",
        "score": 0.9,
        "contact_email": "x@example.nl",
    }
    event = MatchesProposed(**IDS, proposed_at=T0 + timedelta(hours=5), matches=[match], result=RESULT, signal=SIGNAL)
    record = records.from_matches(event, "s", T0)
    assert (record.service_categories, record.time_to_support, record.no_match_reason) == (
        ("respite_care",),
        "4-24h",
        None,
    )
    empty = MatchesProposed(
        **IDS, proposed_at=T0, matches=[], no_match_reason="no capacity", result=RESULT, signal=SIGNAL
    )
    assert records.from_matches(empty, "s", T0).no_match_reason == "no_capacity"
    free_text = empty.model_copy(update={"no_match_reason": "Anna de Vries wil niet"})
    assert records.from_matches(free_text, "s", T0).no_match_reason is None


def test_referrals_and_follow_ups_need_to_say_their_municipality():
    referral = {
        **IDS,
        "referral_id": uuid.uuid4(),
        "service_id": "s1",
        "service_name": "Respijthuis",
        "status": "accepted",
        "updated_at": T0 + timedelta(days=2),
        "updated_by": "provider",
        "note": "Anna belt terug",
    }
    assert records.from_referral(ReferralUpdated(**referral), "s", T0) is None
    record = records.from_referral(ReferralUpdated(**referral, signal=SIGNAL, result=RESULT), "s", T0)
    assert (record.referral_status, record.time_to_support) == ("accepted", "1-3d")
    assert "Anna" not in _released_part(record)
    follow_up = {**IDS, "support_arrived": True, "recorded_at": T0}
    assert records.from_follow_up(FollowUpRecorded(**follow_up), "s", T0) is None
    record = records.from_follow_up(FollowUpRecorded(**follow_up, municipality_code="GM0327"), "s", T0)
    assert (record.support_arrived, record.area, record.age_band) == (True, None, None)
