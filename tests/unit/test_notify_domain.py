import json
import uuid
from datetime import UTC, datetime

from deploy.stack import REPO
from services.notify import domain
from services.notify.templates import render
from shared.contracts import MatchesProposed, ProposedMatch, RiskLevel, ScreeningResult, SignalReceived

DEMO = json.loads((REPO / "deploy" / "demo" / "signal.json").read_text())


def proposed(**caregiver_changes) -> MatchesProposed:
    data = json.loads(json.dumps(DEMO))
    data["caregiver"].update(caregiver_changes.pop("caregiver", {}))
    data.update(caregiver_changes)
    signal = SignalReceived(signal_id=uuid.uuid4(), organisation_id=uuid.uuid4(), organisation_name="GP De Linde",
                            received_at=datetime.now(UTC), **data)
    match = ProposedMatch(service_id="s1", service_name="Mantelzorgcafé", organization_name="Welzijn Leusden",
                          category="caregiver_cafe", score=0.8, contact_email="cafe@example.nl")
    return MatchesProposed(signal_id=signal.signal_id, case_id=uuid.uuid4(), proposed_at=datetime.now(UTC),
                           matches=[match], result=ScreeningResult(risk_level=RiskLevel.OVERBURDENED), signal=signal)


def roles(planned):
    return {(p.recipient_role, p.channel, p.suppressed_reason is None) for p in planned}


def test_with_consent_everyone_hears():
    assert roles(domain.plan(proposed())) == {
        ("caregiver", "email", True), ("referrer", "status_view", True), ("provider", "email", True)}


def test_do_not_contact_sends_nothing_to_the_caregiver_but_informs_the_referrer():
    planned = domain.plan(proposed(caregiver={"contact_preference": "do_not_contact"}))
    caregiver = [p for p in planned if p.recipient_role == "caregiver"]
    assert caregiver[0].channel == "none" and caregiver[0].suppressed_reason
    assert ("referrer", "status_view", True) in roles(planned)


def test_without_consent_to_share_providers_get_nothing():
    planned = domain.plan(proposed(consent={"contact_caregiver": True, "share_with_providers": False}))
    provider = [p for p in planned if p.recipient_role == "provider"]
    assert provider[0].suppressed_reason and provider[0].channel == "none"


def test_dedupe_keys_are_per_case_for_the_caregiver_and_per_signal_for_the_referrer():
    event = proposed()
    planned = {p.recipient_role: p for p in domain.plan(event)}
    assert str(event.case_id) in planned["caregiver"].dedupe_key(event.case_id, event.signal_id)
    assert str(event.signal_id) in planned["referrer"].dedupe_key(event.case_id, event.signal_id)


def test_templates_render_in_the_caregivers_language():
    for language, expected in (("nl", "Beste"), ("en", "Dear")):
        planned = domain.plan(proposed(caregiver={"preferred_language": language}))
        caregiver = next(p for p in planned if p.recipient_role == "caregiver")
        subject, body = render(caregiver.template, caregiver.language, caregiver.context)
        assert body.startswith(expected) and "Mantelzorgcafé" in body and subject
