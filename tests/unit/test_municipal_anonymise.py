"""The anonymiser: nothing identifying goes out, unknown stages and values are dropped,
time is coarsened to the ISO week and age to 10-year bands, and two municipalities' streams
cannot be linked."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from services.signals.municipalities.anonymise import (
    STAGE_EVENTS,
    advance,
    age_band,
    anonymise,
    facts_of_signal,
    iso_week,
    week_start,
)
from services.signals.municipalities.districts import Area, area_of, districts_of
from services.signals.municipalities.pseudonyms import (
    municipality_key,
    stream_pseudonyms,
)
from shared.contracts import Caregiver, EventType, SourceKind

RECEIVED = datetime(2026, 11, 20, 10, 15, 42, tzinfo=UTC)
CAREGIVER = Caregiver(
    name="Anna de Vries", email="anna.devries@example.nl", phone="+31612345678", birth_year=1961,
    postcode="3831 AB", municipality_code="GM0327",
)
# Every identifying value of the signal, and free text a downstream stage might carry.
IDENTIFYING = [
    "Anna de Vries", "Vries", "anna.devries@example.nl", "+31612345678", "0612345678", "3831 AB",
    "3831AB", "HIS-2026-000123", "zwaar sinds de diagnose", "Hulp bij Anna thuis", "bel 06-1234",
    "2026-11-20", "10:15",
]
# The details each stage records (services/signals/handlers.py), laced with identifying text.
DETAILS: dict[str, dict[str, Any]] = {
    "received": {"note": "Mevrouw heeft het zwaar sinds de diagnose", "reference": "HIS-2026-000123"},
    "screened": {"result": {"risk_level": "overburdened", "needs": ["respite_care", "not-a-need"],
                            "reasons": ["Anna de Vries cares 30 hours"]}, "case_id": str(uuid.uuid4())},
    "escalated": {"reason": "Anna de Vries: crisis", "risk_level": "crisis"},
    "matched": {"matches": [
        {"service_name": "Hulp bij Anna thuis", "category": "respite_care", "organization_name": "Vries BV"},
        {"service_name": "x", "category": "Anna de Vries"},
        {"service_name": "y", "category": "caregiver_consultant"}], "no_match_reason": None},
    "notified": {"recipient_role": "caregiver", "channel": "email", "template": "caregiver_proposals",
                 "status": "delivered", "detail": "sent to anna.devries@example.nl, bel 06-1234"},
    "referral": {"referral_id": str(uuid.uuid4()), "service_name": "Hulp bij Anna thuis", "status": "accepted",
                 "reason_code": None, "updated_by": "provider", "note": "Anna de Vries belt terug"},
    "follow_up": {"support_arrived": True, "note": "Anna de Vries is blij"},
    "rescreen_due": {"risk_level": "overburdened"},
}


def _journey() -> list[tuple[EventType, dict[str, Any]]]:
    facts = facts_of_signal(CAREGIVER, SourceKind.GP, RECEIVED)
    out = []
    for n, (stage, detail) in enumerate(DETAILS.items()):
        at = RECEIVED.replace(hour=12 + n)
        facts = advance(facts, stage, detail, at, RECEIVED)
        event_type, event = anonymise(stage, detail, facts, at)
        out.append((event_type, event.model_dump(mode="json")))
    return out


def _values(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [v for item in value.values() for v in _values(item)]
    if isinstance(value, list):
        return [v for item in value for v in _values(item)]
    return [value]


def test_every_stage_has_an_event_and_nothing_identifying_goes_out():
    journey = _journey()
    assert [t for t, _ in journey] == list(STAGE_EVENTS.values())
    text = json.dumps([e for _, e in journey])
    for value in IDENTIFYING:
        assert value.lower() not in text.lower(), value
    leaves = [v for _, e in journey for v in _values(e)]
    assert 1961 not in leaves and "1961" not in text
    assert all(not isinstance(v, str) or not re.search(r"\b\d{4} ?[A-Za-z]{2}\b", v) for v in leaves)


def test_the_event_carries_bands_districts_weeks_and_vocabulary():
    journey = dict(_journey())
    received = journey[EventType.SIGNAL_RECEIVED]
    assert received["week"] == "2026-W47" and received["age_band"] == "60-69"
    assert received["area"] == {"kind": "wijk", "code": "WK032700"}
    assert received["source_kind"] == "gp" and received["risk_level"] is None
    screened = journey[EventType.SIGNAL_SCREENED]
    assert screened["risk_level"] == "overburdened" and screened["needs"] == ["respite_care"]
    matched = journey[EventType.MATCHES_PROPOSED]
    assert matched["service_categories"] == ["caregiver_consultant", "respite_care"]  # free text dropped
    assert matched["hours_to_match"] == 5.0 and matched["hours_to_first_contact"] is None
    notified = journey[EventType.NOTIFICATION_SENT]
    assert notified["recipient_role"] == "caregiver" and notified["delivery_status"] == "delivered"
    assert notified["hours_to_first_contact"] == 6.0
    referral = journey[EventType.REFERRAL_UPDATED]
    assert referral["referral_status"] == "accepted" and referral["hours_to_first_contact"] == 6.0
    assert journey[EventType.FOLLOW_UP_RECORDED]["support_arrived"] is True


def test_an_unknown_stage_is_dropped():
    facts = facts_of_signal(CAREGIVER, SourceKind.GP, RECEIVED)
    assert anonymise("mystery", {"name": "Anna de Vries"}, facts, RECEIVED) is None
    assert advance(facts, "mystery", {"status": "delivered"}, RECEIVED, RECEIVED) == facts


def test_values_outside_the_vocabulary_are_dropped():
    facts = facts_of_signal(CAREGIVER, SourceKind.GP, RECEIVED)
    _, notified = anonymise("notified", {"recipient_role": "Anna de Vries", "status": "anna@x.nl"}, facts, RECEIVED)
    assert notified.recipient_role is None and notified.delivery_status is None
    _, referral = anonymise("referral", {"status": "Anna", "reason_code": "Anna"}, facts, RECEIVED)
    assert referral.referral_status is None and referral.rejection_reason is None
    _, follow_up = anonymise("follow_up", {"support_arrived": "Anna de Vries"}, facts, RECEIVED)
    assert follow_up.support_arrived is None
    screened = advance(facts, "screened", {"result": {"risk_level": "Anna", "needs": ["Anna"]}}, RECEIVED, RECEIVED)
    assert screened.risk_level is None and screened.needs == ()


def test_first_contact_is_a_delivered_message_to_the_caregiver_or_an_accepted_referral():
    facts = facts_of_signal(CAREGIVER, SourceKind.GP, RECEIVED)
    later = RECEIVED.replace(hour=13)
    for stage, detail in [("notified", {"recipient_role": "referrer", "status": "delivered"}),
                          ("notified", {"recipient_role": "caregiver", "status": "failed"}),
                          ("referral", {"status": "rejected"}), ("matched", {"matches": []})]:
        facts = advance(facts, stage, detail, later, RECEIVED)
    assert facts.hours_to_first_contact is None and facts.hours_to_match is None
    facts = advance(facts, "referral", {"status": "in-progress"}, later, RECEIVED)
    assert facts.hours_to_first_contact == 3.0
    # Only the first contact counts.
    assert advance(facts, "notified", {"recipient_role": "caregiver", "status": "delivered"},
                   RECEIVED.replace(hour=20), RECEIVED).hours_to_first_contact == 3.0


@pytest.mark.parametrize(("birth_year", "band"), [
    (1961, "60-69"), (1966, "60-69"), (1967, "50-59"), (2014, "10-19"), (1930, "90+"), (2030, None), (None, None),
])
def test_age_goes_out_in_ten_year_bands(birth_year, band):
    assert age_band(birth_year, 2026) == band


@pytest.mark.parametrize(("moment", "week", "monday"), [
    (datetime(2026, 11, 22, 23, 59, tzinfo=UTC), "2026-W47", datetime(2026, 11, 16, tzinfo=UTC)),
    (datetime(2026, 1, 1, 8, tzinfo=UTC), "2026-W01", datetime(2025, 12, 29, tzinfo=UTC)),
    (datetime(2027, 1, 1, 8, tzinfo=UTC), "2026-W53", datetime(2026, 12, 28, tzinfo=UTC)),
    (datetime(2026, 11, 20, 10), "2026-W47", datetime(2026, 11, 16, tzinfo=UTC)),  # no zone: UTC
])
def test_time_goes_out_as_the_iso_week(moment, week, monday):
    assert iso_week(moment) == week and week_start(moment) == monday


@pytest.mark.parametrize(("postcode", "area"), [
    ("3831AB", Area(kind="wijk", code="WK032700")), ("3831 ab", Area(kind="wijk", code="WK032700")),
    ("3791", Area(kind="wijk", code="WK032703")), ("3512 JK", Area(kind="pc4", code="3512")),
    (None, None), ("AB3831", None), ("38311AB", None),
])
def test_location_goes_out_as_the_district_or_the_pc4(postcode, area):
    assert area_of(postcode) == area


def test_the_demo_municipalities_have_districts():
    assert districts_of("GM0327") == ["WK032700", "WK032701", "WK032702", "WK032703"]
    assert districts_of("GM0307")[0] == "WK030700" and districts_of("GM0313")
    assert districts_of("GM0344") == []


def test_two_municipalities_cannot_link_their_streams():
    master, salt, signal_id = b"master", b"s" * 32, uuid.uuid4()
    leusden = stream_pseudonyms(municipality_key(master, "GM0327"), salt, signal_id)
    amersfoort = stream_pseudonyms(municipality_key(master, "GM0307"), salt, signal_id)
    assert leusden.caregiver != amersfoort.caregiver and leusden.signal != amersfoort.signal
    again = stream_pseudonyms(municipality_key(master, "GM0327"), salt, uuid.uuid4())
    assert again.caregiver == leusden.caregiver and again.signal != leusden.signal
    # A new salt (after erasure) gives the same person a new, unlinkable pseudonym.
    assert stream_pseudonyms(municipality_key(master, "GM0327"), b"t" * 32, signal_id).caregiver != leusden.caregiver
