"""Every message renders in Dutch and English, with a plain-text part and an HTML part."""

import uuid
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from services.notify import domain
from services.notify.templates import FALLBACK_NOTES, LANGUAGES, TEMPLATES, labels, render, render_page
from shared.contracts import (
    CloseReason,
    ContactPreference,
    Need,
    ReferralStatus,
    RejectionReason,
    SelfReferralConfirmationRequested,
    Urgency,
)
from tests.unit.test_notify_domain import LINKS, match, plan, proposed, referral_of

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


def contexts() -> dict[str, dict]:
    event = proposed(matches=[match("a"), match("c", consultant=True, service_name="Mantelzorgconsulent Leusden")])
    planned = {p.template: p.context for p in plan(event)}
    referral = referral_of(event, service_id="a", status=ReferralStatus.REJECTED, reason_code="no_capacity")
    follow_up = domain.FollowUp(
        uuid.uuid4(), event.case_id, event.signal_id, "c", "k", event.signal, "scheduled", NOW, None, None, None, NOW
    )
    return planned | {
        "referrer_referral_status": domain.plan_referral_update(referral, None).context,
        "provider_reminder": domain.plan_reminder(
            replace(referral, contact_email="a@x.nl"), LINKS, "24-11-2026"
        ).context,
        "consultant_escalation": domain.plan_escalation(referral, "mc@x.nl", "24-11-2026").context,
        "caregiver_followup": domain.plan_follow_up(
            follow_up,
            frozenset({"email"}),
            {"yes_url": "https://n.example.nl/f/1/yes", "no_url": "https://n.example.nl/f/1/no"},
            [referral],
        ).context,
        "selfreferral_confirmation": domain.plan_confirmation(
            SelfReferralConfirmationRequested(
                referral_id=uuid.uuid4(),
                email="anna@example.nl",
                name="Anna",
                language="nl",
                expires_at=NOW,
                confirm_url="https://s.example.nl/aanmelden/bevestigen/abc",
            )
        ).context,
        "wmo_handoff": domain.plan_handoff(
            event, domain.ReferralRef(uuid.uuid4(), LINKS, "24-11-2026"), "Graag een keukentafelgesprek."
        ).context,
        "caregiver_closed": domain.plan_closed(
            event.case_id, event.signal, "deceased", "uw naaste is overleden", frozenset({"email"})
        ).context,
    }


TEMPLATE_NAMES = sorted(
    {p.name.split(".")[0] for p in (TEMPLATES / "nl").glob("*.txt.j2") if not p.name.startswith("_")}
)


def test_every_template_has_a_context_here():
    assert set(TEMPLATE_NAMES) == set(contexts())


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("template", TEMPLATE_NAMES)
def test_every_template_renders_text_and_html_in_both_languages(template, language):
    rendered = render(template, language, contexts()[template])
    assert rendered.subject and "\n" not in rendered.subject
    assert rendered.text.strip() and "{{" not in rendered.text and "{%" not in rendered.text
    assert f'<html lang="{language}">' in rendered.html
    for url in ("https://n.example.nl/r/1/accept?exp=1&amp;sig=a", "https://n.example.nl/f/1/yes"):
        if url.replace("&amp;", "&") in rendered.text:
            assert f'href="{url}"' in rendered.html, "links in the HTML part are clickable"


def test_the_caregiver_is_addressed_in_their_language():
    ctx = contexts()["caregiver_proposals"]
    nl, en = render("caregiver_proposals", "nl", ctx), render("caregiver_proposals", "en", ctx)
    assert nl.text.startswith("Beste Anna de Vries") and "Mantelzorgcafé a" in nl.text
    assert en.text.startswith("Dear Anna de Vries") and en.subject == "Support for you as a caregiver"
    assert "Mantelzorgconsulent Leusden" in nl.text, "the consultant is named as who will call"


def test_a_rematch_says_it_is_a_new_proposal():
    ctx = contexts()["referrer_update"] | {"rematch": True}
    assert "nieuw voorstel" in render("referrer_update", "nl", ctx).subject
    assert "a new proposal" in render("referrer_update", "en", ctx).subject


def test_the_provider_gets_what_it_needs_to_act_and_the_answer_links():
    text = render("provider_referral", "nl", contexts()["provider_referral"]).text
    for expected in (
        "Anna de Vries",
        "anna.devries@example.nl",
        "+31612345678",
        "GM0327",
        "contact met andere mantelzorgers",
        "vóór 24-11-2026",
        *LINKS.values(),
    ):
        assert expected in text


def test_the_referrer_is_told_the_reason_and_the_next_step():
    text = render("referrer_referral_status", "nl", contexts()["referrer_referral_status"]).text
    assert "niet aangenomen: geen plek" in text and "Wat nu: wij zoeken een ander passend aanbod" in text


def test_sms_is_short_and_plain():
    ctx = contexts()["caregiver_proposals"]
    for language in LANGUAGES:
        sms = render("caregiver_proposals", language, ctx, channel="sms")
        assert sms.html is None and len(sms.text) <= 320 and "Mantelzorgcafé a" in sms.text


@pytest.mark.parametrize("language", LANGUAGES)
def test_labels_name_every_code(language):
    names = labels(language)
    assert set(names["need"]) == {n.value for n in Need}
    assert set(names["status"]) == {s.value for s in ReferralStatus}
    assert set(names["reason"]) == {r.value for r in RejectionReason}
    assert set(names["urgency"]) == {u.value for u in Urgency}
    assert set(names["contact"]) == {c.value for c in ContactPreference}


def test_closing_after_a_death_is_a_condolence_not_a_question():
    ctx = contexts()["caregiver_closed"]
    assert render("caregiver_closed", "nl", ctx).subject == "Met deelneming"
    text = render("caregiver_closed", "nl", ctx | {"deceased": False, "reason_text": "de steun is geregeld"}).text
    assert "afgesloten: de steun is geregeld" in text
    for language in LANGUAGES:
        assert set(labels(language)["close_reason"]) == {r.value for r in CloseReason}


def test_the_wmo_hand_off_carries_the_consultants_note_and_the_answer_links():
    text = render("wmo_handoff", "nl", contexts()["wmo_handoff"]).text
    assert "keukentafelgesprek" in text and "Graag een keukentafelgesprek." in text and LINKS["accept_url"] in text


def test_an_unknown_language_falls_back_to_dutch():
    assert render("caregiver_proposals", "fy", contexts()["caregiver_proposals"]).text.startswith("Beste")


@pytest.mark.parametrize("language", ["tr", "ar", "pl"])
def test_a_caregivers_language_without_templates_gets_dutch_and_is_told_so(language):
    from shared.contracts import Language

    assert Language(language)
    for channel in ("email", "sms"):
        text = render("caregiver_proposals", language, contexts()["caregiver_proposals"], channel=channel).text
        first, rest = text.split("\n", 1)
        assert first == FALLBACK_NOTES[language]
        assert rest.lstrip().startswith("Beste" if channel == "email" else "Signaal naar Steun"), rest


def test_pages_escape_what_they_show():
    page = render_page("message", "nl", title="<script>", text="x")
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_the_caregiver_overview_gives_each_service_s_contact_details_and_the_personal_page():
    event = proposed(
        matches=[
            match("a", contact_phone="033 123 45 67", address="Plein 4, 3831 AA Leusden", url="https://cafe.example.nl")
        ]
    )
    event = event.model_copy(
        update={"signal": event.signal.model_copy(update={"status_url": "https://s.example.nl/mijn/1"})}
    )
    [caregiver] = [
        p
        for p in domain.plan_proposals(
            event,
            referrer=None,
            rematch=False,
            channels=frozenset({"email"}),
            referrals={},
            social_map_url="https://m.example.nl/sociale-kaart",
        )
        if p.template == "caregiver_proposals"
    ]
    text = render("caregiver_proposals", "nl", caregiver.context).text
    for expected in (
        "033 123 45 67",
        "Plein 4, 3831 AA Leusden",
        "https://cafe.example.nl",
        "https://s.example.nl/mijn/1",
        "https://m.example.nl/sociale-kaart",
    ):
        assert expected in text


def test_the_confirmation_mail_carries_the_link_and_says_what_happens_without_it():
    text = render("selfreferral_confirmation", "nl", contexts()["selfreferral_confirmation"]).text
    assert "https://s.example.nl/aanmelden/bevestigen/abc" in text and "binnen een dag" in text
