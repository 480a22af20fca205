"""Who is told what: consent, "do not contact", channels, referrals and dedupe keys."""

import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime

from deploy.stack import REPO
from services.notify import domain
from services.notify.domain import ReferralRef, Referrer
from shared.contracts import (
    MatchesProposed,
    Need,
    ProposedMatch,
    ReferralStatus,
    RiskLevel,
    ScreeningResult,
    SignalReceived,
)

DEMO = json.loads((REPO / "deploy" / "demo" / "signal.json").read_text())
ALL_CHANNELS = frozenset({"email", "sms", "webhook", "status_view"})
NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
LINKS = {
    "accept_url": "https://n.example.nl/r/1/accept?exp=1&sig=a",
    "decline_url": "https://n.example.nl/r/1/decline",
    "api_url": "https://n.example.nl/v1/referrals/1",
}


def match(service_id: str = "s1", **changes) -> ProposedMatch:
    data = {
        "service_id": service_id,
        "service_name": f"Mantelzorgcafé {service_id}",
        "organization_name": "Welzijn Leusden",
        "category": "caregiver_cafe",
        "score": 0.8,
        "contact_email": f"{service_id}@provider.example.nl",
        "reservation_id": uuid.uuid4(),
    } | changes
    return ProposedMatch(**data)


def proposed(matches=None, case_id=None, signal_id=None, **changes) -> MatchesProposed:
    data = json.loads(json.dumps(DEMO))
    data["caregiver"].update(changes.pop("caregiver", {}))
    data.update(changes)
    signal = SignalReceived(
        signal_id=signal_id or uuid.uuid4(),
        organisation_id=uuid.uuid4(),
        organisation_name="GP De Linde",
        received_at=datetime.now(UTC),
        **data,
    )
    return MatchesProposed(
        signal_id=signal.signal_id,
        case_id=case_id or uuid.uuid4(),
        proposed_at=datetime.now(UTC),
        matches=[match()] if matches is None else matches,
        signal=signal,
        result=ScreeningResult(risk_level=RiskLevel.OVERBURDENED, needs=[Need.PEER_CONTACT], score=11),
    )


def refs(event: MatchesProposed) -> dict[str, ReferralRef]:
    return {
        m.service_id: ReferralRef(uuid.uuid4(), LINKS, "24-11-2026")
        for m in event.matches
        if domain.referral_blocker(event.signal, m) is None
    }


def plan(
    event: MatchesProposed,
    referrer: Referrer | None = None,
    rematch: bool = False,
    channels: frozenset[str] = ALL_CHANNELS,
    referrals=None,
):
    return domain.plan_proposals(
        event,
        referrer=referrer,
        rematch=rematch,
        channels=channels,
        referrals=refs(event) if referrals is None else referrals,
    )


def referral_of(event: MatchesProposed, **changes) -> domain.Referral:
    """The referral notify keeps for the event's first proposal, as the repository gives it."""
    values = {
        "id": uuid.uuid4(),
        "case_id": event.case_id,
        "signal_id": event.signal_id,
        "organisation_id": event.signal.organisation_id,
        "correlation_id": "c",
        "subject_key": "k",
        "service_id": "s1",
        "service_name": "Café",
        "organization_name": "Welzijn",
        "contact_email": None,
        "consultant": False,
        "reservation_id": None,
        "status": ReferralStatus.REQUESTED,
        "reason_code": None,
        "note": None,
        "signal": event.signal,
        "result": event.result,
        "remind_at": None,
        "escalate_at": None,
        "reminded_at": None,
        "escalated_at": None,
        "created_at": NOW,
        "updated_at": NOW,
    }
    return domain.Referral(**values | changes)


def by_role(planned):
    return {p.recipient_role: p for p in planned}


def roles(planned):
    return {(p.recipient_role, p.channel, p.suppressed_reason is None) for p in planned}


def test_with_consent_everyone_hears():
    assert roles(plan(proposed())) == {
        ("caregiver", "email", True),
        ("referrer", "status_view", True),
        ("provider", "email", True),
    }


def test_do_not_contact_sends_nothing_to_the_caregiver_or_providers_but_informs_the_referrer():
    planned = plan(proposed(caregiver={"contact_preference": "do_not_contact"}))
    assert {(p.recipient_role, p.suppressed_reason) for p in planned if p.suppressed_reason} == {
        ("caregiver", "caregiver asked not to be contacted"),
        ("provider", "caregiver asked not to be contacted"),
    }
    referrer = by_role(planned)["referrer"]
    assert referrer.suppressed_reason is None and referrer.context["caregiver_contacted"] is False
    assert not domain.should_follow_up(planned)


def test_without_consent_to_contact_the_caregiver_is_not_contacted():
    planned = plan(proposed(consent={"contact_caregiver": False, "share_with_providers": True}))
    assert by_role(planned)["caregiver"].suppressed_reason == "no consent to contact the caregiver"
    assert by_role(planned)["caregiver"].address is None


def test_without_consent_to_share_providers_get_no_referral():
    event = proposed(consent={"contact_caregiver": True, "share_with_providers": False})
    assert refs(event) == {}
    provider = by_role(plan(event))["provider"]
    assert provider.suppressed_reason == "no consent to share details with providers" and provider.channel == "none"


def test_the_consultant_always_gets_the_referral_but_personal_details_only_with_consent():
    consultant = match("c1", consultant=True, category="caregiver_consultant")
    event = proposed(matches=[consultant], consent={"contact_caregiver": False, "share_with_providers": False})
    planned = by_role(plan(event))["consultant"]
    assert planned.channel == "email" and planned.suppressed_reason is None
    assert planned.template == "consultant_referral"
    assert planned.context["caregiver"]["shared"] is False and "name" not in planned.context["caregiver"]
    shared = by_role(plan(proposed(matches=[consultant])))["consultant"]
    assert shared.context["caregiver"]["name"] == "Anna de Vries"


def test_the_caregiver_gets_sms_only_when_a_gateway_is_configured():
    event = proposed(caregiver={"contact_preference": "sms"})
    assert by_role(plan(event))["caregiver"].channel == "sms"
    assert by_role(plan(event))["caregiver"].address == "+31612345678"
    without = by_role(plan(event, channels=frozenset({"email", "webhook", "status_view"})))["caregiver"]
    assert without.channel == "none" and "sms" in without.suppressed_reason


def test_phone_and_post_are_left_to_a_person():
    for preference in ("phone", "post"):
        caregiver = by_role(plan(proposed(caregiver={"contact_preference": preference})))["caregiver"]
        assert caregiver.suppressed_reason == f"no channel for contact preference {preference}"


def test_the_referrer_prefers_its_webhook_then_its_email_then_the_status_view():
    event = proposed()
    org = event.signal.organisation_id
    hook = Referrer(org, "GP", email="gp@example.nl", webhook_url="https://his.example.nl/hook", language="en")
    assert (by_role(plan(event, hook))["referrer"].channel, by_role(plan(event, hook))["referrer"].language) == (
        "webhook",
        "en",
    )
    assert by_role(plan(event, Referrer(org, "GP", email="gp@example.nl")))["referrer"].address == "gp@example.nl"
    assert by_role(plan(event, Referrer(org, "GP")))["referrer"].channel == "status_view"


def test_the_referrer_gets_no_health_detail():
    referrer = by_role(plan(proposed()))["referrer"]
    text = json.dumps(referrer.context)
    assert "overburdened" not in text and "peer_contact" not in text and "dementia" not in text


def test_a_redelivered_event_plans_the_same_dedupe_keys():
    event = proposed()
    referrals = refs(event)
    first = {p.dedupe_key for p in plan(event, referrals=referrals)}
    assert first == {p.dedupe_key for p in plan(event, referrals=referrals)}
    assert len(first) == 3


def test_the_caregiver_gets_one_overview_per_case_and_news_only_after_a_rematch():
    first = proposed(matches=[match("a"), match("b")])
    again = proposed(matches=[match("b"), match("a")], case_id=first.case_id, signal_id=first.signal_id)
    # Another organisation's signal about the same caregiver: same case, other proposals.
    second_source = proposed(matches=[match("a"), match("c")], case_id=first.case_id)
    rematched = proposed(matches=[match("c")], case_id=first.case_id, signal_id=first.signal_id)
    key = {
        name: {p.recipient_role: p.dedupe_key for p in plan(e, rematch=name == "rematched")}
        for name, e in (("first", first), ("again", again), ("second_source", second_source), ("rematched", rematched))
    }
    assert key["first"]["caregiver"] == key["again"]["caregiver"], "same proposals in another order: no spam"
    assert key["first"]["caregiver"] == key["second_source"]["caregiver"], "one overview per case"
    assert key["first"]["referrer"] != key["second_source"]["referrer"], "each referrer hears about its signal"
    assert key["first"]["caregiver"] != key["rematched"]["caregiver"], "a re-match after a decline is news"
    assert key["first"]["referrer"] != key["rematched"]["referrer"]
    assert str(first.case_id) in key["first"]["caregiver"] and str(first.signal_id) in key["first"]["referrer"]


def test_provider_messages_are_keyed_by_their_referral():
    event = proposed(matches=[match("a"), match("b")])
    referrals = refs(event)
    providers = [p for p in plan(event, referrals=referrals) if p.recipient_role == "provider"]
    assert {p.referral_id for p in providers} == {r.id for r in referrals.values()}
    assert all(str(p.referral_id) in p.dedupe_key for p in providers)


def test_a_provider_without_an_address_waits_in_the_api():
    event = proposed(matches=[match("a", contact_email=None)])
    provider = by_role(plan(event))["provider"]
    assert provider.channel == "none" and provider.referral_id is not None and "API" in provider.suppressed_reason


def test_referral_updates_go_to_the_referrer_once_per_status():
    event = proposed()
    referral = referral_of(event, status=ReferralStatus.REJECTED, reason_code="no_capacity")
    rejected = domain.plan_referral_update(referral, None)
    accepted = domain.plan_referral_update(replace(referral, status=ReferralStatus.ACCEPTED, reason_code=None), None)
    assert rejected.recipient_role == "referrer" and rejected.template == "referrer_referral_status"
    assert rejected.dedupe_key != accepted.dedupe_key
    assert rejected.context["reason_code"] == "no_capacity"


def test_escalation_without_a_known_consultant_is_recorded_not_lost():
    referral = referral_of(proposed())
    missing = domain.plan_escalation(referral, None, "24-11-2026")
    assert missing.suppressed_reason == "no caregiver consultant known for GM0327"
    assert domain.plan_escalation(referral, "mc@example.nl", "24-11-2026").channel == "email"


def test_the_webhook_document_names_the_update():
    event = proposed()
    referrer = by_role(plan(event, Referrer(event.signal.organisation_id, "GP", webhook_url="https://h")))["referrer"]
    document = domain.webhook_document(uuid.uuid4(), referrer, "subject", "text", "2026-11-22T09:00:00+00:00")
    assert document["type"] == "referrer_update" and document["source_reference"] == "HIS-2026-000123"
    assert document["data"]["proposals"][0]["service_name"] == "Mantelzorgcafé s1"
    assert set(document) == {
        "id",
        "type",
        "occurred_at",
        "signal_id",
        "source_reference",
        "language",
        "subject",
        "text",
        "data",
    }


def test_the_caregivers_dedupe_key_names_the_case_not_their_address():
    case_id = uuid.uuid4()
    for preference, address in (("email", DEMO["caregiver"]["email"]), ("sms", DEMO["caregiver"]["phone"])):
        caregiver = by_role(plan(proposed(case_id=case_id, caregiver={"contact_preference": preference})))["caregiver"]
        assert caregiver.address == address and caregiver.suppressed_reason is None
        assert address not in caregiver.dedupe_key and str(case_id) in caregiver.dedupe_key
    # Another address for the same caregiver (a second signal) is still the same one overview.
    other = proposed(case_id=case_id, caregiver={"email": "anna.other@example.nl"})
    assert (
        by_role(plan(other))["caregiver"].dedupe_key == by_role(plan(proposed(case_id=case_id)))["caregiver"].dedupe_key
    )
