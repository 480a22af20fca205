"""The workbench's pure rules: which cases need a person, whose queue they are in, who may
see them, and screening's reasons in Dutch."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest

from services.casework import domain, labels
from shared.contracts import SignalReceived

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
HOURS = timedelta(hours=4)
DAYS = timedelta(days=4)


def signal(**changes: Any) -> SignalReceived:
    data: dict[str, Any] = {
        "signal_id": str(uuid4()),
        "organisation_id": str(uuid4()),
        "organisation_name": "GP",
        "received_at": NOW.isoformat(),
        "source": {"kind": "gp"},
        "caregiver": {"name": "A", "email": "a@example.nl", "municipality_code": "GM0327"},
        "consent": {"contact_caregiver": True},
    }
    for key, value in changes.items():
        data[key] = value | {"municipality_code": "GM0327"} if key == "caregiver" else value
    return SignalReceived.model_validate(data)


def case(**changes: Any) -> domain.Case:
    fields: dict[str, Any] = {"municipality_code": "GM0327", "contact_preference": "email"} | changes
    return domain.Case(id=uuid4(), subject="p", created_at=NOW, updated_at=NOW, **fields)


def referral(**changes: Any) -> domain.CaseReferral:
    fields: dict[str, Any] = {"status": "requested", "created_at": NOW - DAYS} | changes
    return domain.CaseReferral(case_id=uuid4(), service_id="s", service_name="S", updated_at=NOW, **fields)


def codes(c: domain.Case, referrals: Sequence[domain.CaseReferral] = (), now: datetime = NOW) -> list[str]:
    return [r.code for r in domain.queue_reasons(c, referrals, now, crisis_deadline=HOURS, unanswered_after=DAYS)]


def test_a_case_with_nothing_to_do_is_in_no_queue():
    assert codes(case()) == []
    assert codes(case(unmatched=True, closed_at=NOW)) == [], "a closed case needs nobody"


def test_a_crisis_has_a_deadline_in_hours_and_goes_to_the_back_up_when_it_passes():
    crisis = case(crisis_since=NOW, derailed=True)
    [first, second] = domain.queue_reasons(crisis, [], NOW, crisis_deadline=HOURS, unanswered_after=DAYS)
    assert (first.code, first.deadline, second.code) == ("crisis", NOW + HOURS, "veilig_thuis")
    assert codes(crisis, now=NOW + HOURS + timedelta(seconds=1))[0] == "crisis_overdue"
    assert codes(case(crisis_since=NOW, last_contact_at=NOW + timedelta(hours=1)), now=NOW + HOURS * 2) == [], (
        "a crisis picked up (a contact attempt) is off the clock"
    )


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"escalated_at": NOW}, ["escalated"]),
        ({"unmatched": True}, ["unmatched"]),
        ({"outreach": "no_consent"}, ["no_consent"]),
        ({"contact_preference": "phone"}, ["prefers_phone"]),
        ({"contact_preference": "post"}, ["prefers_post"]),
        ({"rescreen_due_at": NOW}, ["rescreen_due"]),
        ({"rescreen_due_at": NOW + DAYS}, []),
        ({"support_not_arrived_at": NOW}, ["support_not_arrived"]),
    ],
)
def test_each_reason_a_person_is_needed(changes, expected):
    assert codes(case(**changes)) == expected


def test_a_referral_no_provider_answered():
    assert codes(case(), [referral()]) == ["referral_unanswered"]
    assert codes(case(), [referral(status="accepted")]) == []
    assert codes(case(), [referral(created_at=NOW)]) == []


def test_outreach_when_nobody_but_a_person_can_reach_the_caregiver():
    assert domain.outreach(signal()) is None
    assert domain.outreach(signal(consent={"contact_caregiver": False})) == "no_consent"
    assert domain.outreach(signal(caregiver={"email": None})) == "no_channel"
    assert domain.outreach(signal(caregiver={"contact_preference": "phone"})) == "no_channel"
    assert domain.outreach(signal(caregiver={"contact_preference": "do_not_contact"}, consent={})) is None, (
        "do not contact is respected"
    )


def test_crisis_and_derailed_care():
    assert domain.is_crisis(signal(urgency="crisis"), "at_risk")
    assert domain.is_crisis(signal(), "crisis")
    assert domain.is_crisis(signal(observations=["abuse"]), "overburdened") and domain.is_derailed(
        signal(observations=["abuse"])
    )
    assert not domain.is_crisis(signal(observations=["exhaustion"]), "overburdened")


def test_routing_to_the_municipality_or_the_regional_fallback():
    regions = {"Regio Noord": ["GM1680", "GM0106"]}
    assert domain.route("GM0327", ["GM0327"], regions, "Vangnet") == (domain.MUNICIPALITY, "GM0327")
    assert domain.route("GM1680", ["GM0327"], regions, "Vangnet") == (domain.REGIONAL_FALLBACK, "Regio Noord")
    assert domain.route("GM0307", ["GM0327"], regions, "Vangnet") == (domain.REGIONAL_FALLBACK, "Vangnet"), (
        "the operator's default region catches the rest"
    )


def test_who_may_see_a_case():
    me = domain.Consultant(
        id=uuid4(), name="A", email="a@example.nl", municipality_code="GM0327", fallback_region="Vangnet"
    )
    kw: dict[str, Any] = {"covered": ["GM0327", "GM0307"], "regions": {}, "default_region": "Vangnet"}
    assert domain.may_see(case(), me, [], **kw)
    assert domain.may_see(case(municipality_code="GM1680"), me, [], **kw), "the fallback queue"
    assert not domain.may_see(case(municipality_code="GM0307"), me, [], **kw), "another consultant's case"
    overdue = [domain.QueueReason("crisis_overdue")]
    assert domain.may_see(case(municipality_code="GM0307"), me, overdue, **kw), "the back-up for an overdue crisis"
    assert not domain.may_see(case(municipality_code="GM1680"), dataclasses.replace(me, fallback_region=None), [], **kw)


def test_the_consultants_signal_carries_the_answers_and_not_the_crisis():
    latest = signal(urgency="crisis", observations=["neglect", "exhaustion"], note="vertrouwelijk")
    own = domain.consultant_signal(
        latest,
        signal_id=uuid4(),
        organisation_id=uuid4(),
        now=NOW,
        instrument_id="ediz_plus",
        answers=[1] * 15,
        consultant_name="Els",
    )
    assert own.instrument is not None and own.instrument.answers == [1] * 15
    assert own.urgency.value == "normal" and [o.value for o in own.observations] == ["exhaustion"]
    assert own.caregiver == latest.caregiver and own.note is None and own.source.kind.value == "other"


@pytest.mark.parametrize(
    ("english", "dutch"),
    [
        (
            "EDIZ-plus score 11 of 15: band heavy (9–15), a high-burden band: overburdened",
            "EDIZ-plus-score 11 van 15: zwaar (9–15), een zware band: overbelast",
        ),
        (
            "balance model: 7 points (load 6, reduced capacity 1, signs of strain 0); 4 to 7 reads as at risk",
            "balansmodel: 7 punten (draaglast 6, minder draagkracht 1, tekenen van overbelasting 0); "
            "4 tot en met 7 is risico op overbelasting",
        ),
        (
            "signs of derailed care observed: neglect (Veilig Thuis can advise)",
            "signalen van ontspoorde zorg: verwaarlozing (Veilig Thuis kan adviseren)",
        ),
        ("the referrer reported a crisis", "de verwijzer meldde een crisis"),
        (
            "2 signals from 2 independent sources (gp, resident): confidence medium",
            "2 signalen van 2 onafhankelijke bronnen (huisarts, buurtbewoner): betrouwbaarheid gemiddeld",
        ),
        (
            "next: administer EDIZ-plus to measure the burden",
            "volgende stap: neem de EDIZ-plus af om de belasting te meten",
        ),
    ],
)
def test_screening_reasons_in_dutch(english, dutch):
    assert labels.reason(english, "nl") == (dutch, True)
    assert labels.reason(english, "en") == (english, True)


def test_an_unknown_reason_is_shown_as_written_and_marked():
    assert labels.reason("something new", "nl") == ("something new", False)


def test_every_screening_reason_template_has_a_dutch_pattern():
    """The reasons screening actually writes for a few signals all translate."""
    from services.screening import domain as screening
    from shared.instruments import load_catalogue

    catalogue = load_catalogue()
    for s in (
        signal(urgency="crisis", observations=["neglect", "exhaustion", "no_backup"]),
        signal(
            care_recipient={"condition": "dementie"},
            care_situation={
                "hours_per_week": 45,
                "duration_months": 30,
                "lives_together": True,
                "combines_with_work": True,
            },
            caregiver={"birth_year": 1940},
            instrument={"id": "ediz_plus", "answers": [1] * 15},
        ),
        signal(instrument={"id": "mcsi", "answers": [2] * 13}, urgency="high"),
    ):
        for text in screening.assess(s, catalogue).reasons:
            assert labels.reason(text, "nl")[1], f"no Dutch for: {text}"
