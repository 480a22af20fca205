"""The front doors' pure parts: signed sessions and links, forms as signals, the binding of
source kind to organisation, the social map's search, and the municipality table."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

from services.matching import search
from services.matching.taxonomy import terms_for
from services.signals import domain, forms, sessions
from services.signals.domain import Organisation
from services.signals.schemas import SignalIn
from shared.municipalities import find, municipalities, province_of

SECRET = "s" * 32
ORG = uuid.uuid4()
DEMO_MAP = json.loads(Path("services/matching/demo/social_map.json").read_text(encoding="utf-8"))


def test_a_session_cookie_names_the_organisation_until_it_expires_and_cannot_be_forged() -> None:
    value = sessions.session_value(SECRET, ORG, expires=2000)
    assert sessions.read_session(SECRET, value, now=1999) == ORG
    assert sessions.read_session(SECRET, value, now=2001) is None
    assert sessions.read_session("other-secret", value, now=1000) is None
    forged = value.replace(str(ORG), str(uuid.uuid4()))
    assert sessions.read_session(SECRET, forged, now=1000) is None
    assert sessions.read_session(SECRET, "garbage", now=1000) is None and sessions.read_session(SECRET, None, 0) is None


def test_the_csrf_token_is_bound_to_the_session() -> None:
    a, b = sessions.session_value(SECRET, ORG, 2000), sessions.session_value(SECRET, uuid.uuid4(), 2000)
    assert sessions.csrf_valid(SECRET, a, sessions.csrf_token(SECRET, a))
    assert not sessions.csrf_valid(SECRET, b, sessions.csrf_token(SECRET, a))
    assert not sessions.csrf_valid(SECRET, None, sessions.csrf_token(SECRET, a))


def test_a_status_link_opens_one_signal_until_it_expires() -> None:
    signal_id = uuid.uuid4()
    sig = sessions.status_signature(SECRET, signal_id, 5000)
    assert sessions.status_valid(SECRET, signal_id, 5000, sig, now=4000)
    assert not sessions.status_valid(SECRET, uuid.uuid4(), 5000, sig, now=4000)
    assert not sessions.status_valid(SECRET, signal_id, 5001, sig, now=4000)
    assert not sessions.status_valid(SECRET, signal_id, 5000, sig, now=5001)


def _form(**fields: str | list[str]) -> forms.Form:
    return {k: v if isinstance(v, list) else [v] for k, v in fields.items()}


def test_a_professional_form_becomes_the_same_signal_the_api_takes() -> None:
    form = _form(
        caregiver_name="Anna",
        caregiver_email="anna@example.nl",
        municipality_code="GM0327",
        hours_per_week="12,5",
        lives_together="yes",
        observations=["exhaustion", "sleep_problems"],
        consent_contact="yes",
        consent_obtained_by="dr. Jansen",
        consent_obtained_at="2026-11-20",
        own_question="Iemand die meedenkt",
        task_supervision_effort="heavy",
        task_supervision_help="no",
        task_cooking_effort="",
        urgency="high",
        caregiver_phone="",
    )
    signal, errors = forms.validate(forms.professional_signal(form, "gp", 15))
    assert errors == [] and signal is not None
    assert signal.care_situation.hours_per_week == 12.5 and signal.care_situation.lives_together is True
    assert signal.caregiver.phone is None, "an empty field is 'not known', not an empty string"
    assert signal.caregiver.own_question == "Iemand die meedenkt"
    assert signal.consent.contact_caregiver and not signal.consent.share_with_providers
    assert signal.consent.obtained_at == datetime(2026, 11, 20, 12, tzinfo=UTC)
    assert [(t.task, t.effort, t.has_help) for t in signal.care_tasks] == [("supervision", "heavy", False)]
    assert signal.instrument is None, "no EDIZ-plus item answered: not administered"


def test_form_errors_name_the_field() -> None:
    signal, errors = forms.validate(
        forms.professional_signal(
            _form(municipality_code="GM0327", caregiver_email="not-an-address", caregiver_birth_year="negentien"),
            "gp",
            15,
        )
    )
    assert signal is None
    assert {e.split(":")[0] for e in errors} == {"caregiver.email", "caregiver.birth_year"}


def test_a_partly_answered_instrument_is_refused_by_item() -> None:
    answers = {f"ediz_{n}": "1" for n in range(1, 15)}  # item 15 left open
    data = forms.professional_signal(_form(municipality_code="GM0327", **answers), "gp", 15)
    assert data["instrument"]["answers"][-1] == -1


def test_a_self_referral_consents_itself_and_a_concern_never_contacts_the_person() -> None:
    now = datetime(2026, 11, 25, 10, tzinfo=UTC)
    own, errors = forms.validate(
        forms.self_referral(
            _form(
                caregiver_name="Els",
                caregiver_email="els@example.nl",
                municipality_code="GM0327",
                contact_preference="phone",
            ),
            15,
            now,
        )
    )
    assert not errors and own is not None
    assert own.source.kind == "self" and own.consent.contact_caregiver and own.consent.obtained_at == now
    assert own.caregiver.contact_preference == "phone", "phone and post go to the consultant's outreach"
    concern, errors = forms.validate(
        forms.concern(
            _form(
                caregiver_name="Buurvrouw",
                municipality_code="GM0327",
                concern="Ziet er uitgeput uit",
                reporter_name="Piet",
                reporter_phone="0612345678",
                observations=["exhaustion"],
            )
        )
    )
    assert not errors and concern is not None
    assert concern.source.kind == "resident" and not concern.consent.contact_caregiver
    assert concern.caregiver.email is None and concern.caregiver.phone is None, "nothing reaches the person"
    assert "Piet" in (concern.note or "") and "0612345678" in (concern.note or "")


def test_the_source_kind_is_bound_to_the_organisation_kind() -> None:
    gp = Organisation(ORG, "Huisartsenpraktijk", "gp")

    def signal(kind: str) -> SignalIn:
        return forms.validate({"source": {"kind": kind}, "caregiver": {"municipality_code": "GM0327"}})[0]

    assert domain.source_kind_errors(signal("gp"), gp) == []
    assert domain.source_kind_errors(signal("practice_nurse"), gp) == []
    [error] = domain.source_kind_errors(signal("resident"), gp)
    assert error["loc"] == ("body", "source", "kind") and "gp" in error["msg"]
    assert domain.source_kind_errors(signal("home_care"), Organisation(ORG, "Thuiszorg", "home_care")) == []


def _records() -> list[dict]:
    """The demo map as the store returns it: service_full with its organization."""
    return [
        {**s, "organization": {k: v for k, v in o.items() if k != "services"}} for o in DEMO_MAP for s in o["services"]
    ]


def test_respijt_finds_respite_care_by_the_taxonomy_s_dutch_words() -> None:
    assert terms_for("respijt") == {"respite_care"}
    assert terms_for("Huishoudelijke hulp") == {"household_help"}
    leusden = [r for r in _records() if any(a["uri"].endswith("gm0327") for a in r.get("service_areas", []))]
    names = {card.name for card in search.search(leusden, "respijt")}
    assert {"Logeeropvang bij dementie", "Dagopvang Het Hamersveld", "Vrijwillige thuisondersteuning"} <= names
    assert "Mantelzorgcafé Leusden" not in names
    assert len(search.search(leusden, "")) == len(leusden), "an empty search shows everything"


def test_a_card_shows_address_hours_contact_eligibility_and_languages() -> None:
    [card] = [search.card(r) for r in _records() if r["name"] == "Mantelzorgconsulent Leusden"]
    assert card.addresses == ["Plein 4, 3831 AA Leusden"]
    assert card.hours[0] == {
        "days": "MO,TU,TH",
        "opens": "09:00",
        "closes": "17:00",
        "description": "Spreekuur op afspraak.",
    }
    assert card.contacts[0]["phones"] == ["+31 33 000 3777"]
    assert card.eligibility and card.languages == ["Nederlands", "Engels"]
    assert search.day_names("MO,TU,TH", "nl") == "ma, di, do"


def test_municipalities_by_name_or_code_with_their_province() -> None:
    assert find(" leusden ").code == "GM0327" and find("gm0307").name == "Amersfoort"
    assert province_of("GM0327") == "Utrecht" and province_of("GM1680") == "Drenthe" and province_of("GM9999") is None
    assert all(m.province for m in municipalities().values())


def test_a_stop_reply_is_recognised_and_numbers_compare_in_their_normal_form() -> None:
    from services.notify.sms import address_digest, is_stop

    assert is_stop("STOP") and is_stop(" stop. ") and is_stop("Stoppen graag") and not is_stop("Ik stop niet")
    assert not is_stop("") and not is_stop("bedankt")
    assert len({address_digest(n) for n in ("+31 6-1234 5678", "0031612345678", "0612345678")}) == 1


def test_the_clis_find_a_running_stack_s_database_unless_one_is_given(tmp_path, monkeypatch) -> None:
    import os

    from services.matching.config import MatchingSettings

    stack_file = tmp_path / "stack.json"
    stack_file.write_text(
        json.dumps({"pid": os.getpid(), "databases": {"matching": "postgresql://p@127.0.0.1:54329/matching"}})
    )
    monkeypatch.setenv("STS_STACK_FILE", str(stack_file))
    monkeypatch.delenv("MATCHING_DATABASE_URL", raising=False)
    assert MatchingSettings().database_url == "postgresql://p@127.0.0.1:54329/matching"
    monkeypatch.setenv("MATCHING_DATABASE_URL", "postgresql://explicit/matching")
    assert MatchingSettings().database_url == "postgresql://explicit/matching"
    monkeypatch.delenv("MATCHING_DATABASE_URL")
    stack_file.write_text(json.dumps({"pid": 2**22 + 12345, "databases": {"matching": "postgresql://gone/matching"}}))
    assert MatchingSettings().database_url != "postgresql://gone/matching", "a stack that stopped is not used"
