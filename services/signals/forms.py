"""The front doors' forms as signals, pure: a posted form becomes the same ``SignalIn`` the
API takes (so one validation names the field either way), and the labels the pages show.

Empty fields are left out rather than sent as empty strings, so "not known" stays None."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ValidationError

from services.signals.schemas import SignalIn
from shared.contracts import CareTaskEffort, CareTaskKind, ContactPreference, Observation, SourceKind, Urgency

Form = dict[str, list[str]]
EDIZ = "ediz_plus"

OBSERVATIONS = {
    Observation.SLEEP_PROBLEMS: ("Slaapproblemen", "Sleep problems"),
    Observation.PHYSICAL_COMPLAINTS: ("Lichamelijke klachten", "Physical complaints"),
    Observation.SOCIAL_ISOLATION: ("Sociaal isolement", "Social isolation"),
    Observation.EXHAUSTION: ("Uitputting", "Exhaustion"),
    Observation.EMOTIONAL_DISTRESS: ("Emotionele nood", "Emotional distress"),
    Observation.TENSION: ("Spanning", "Tension"),
    Observation.DEPRESSIVE_SYMPTOMS: ("Sombere klachten", "Depressive symptoms"),
    Observation.FINANCIAL_PROBLEMS: ("Geldzorgen", "Financial problems"),
    Observation.WORK_PROBLEMS: ("Problemen op het werk", "Problems at work"),
    Observation.RELATIONSHIP_STRAIN: ("Spanning in de relatie", "Strain in the relationship"),
    Observation.NO_TIME_FOR_SELF: ("Geen tijd voor zichzelf", "No time for themselves"),
    Observation.NO_BACKUP: ("Geen vervanging", "No one to take over"),
    Observation.CARE_RECIPIENT_BEHAVIOUR: (
        "Moeilijk gedrag van de naaste",
        "Difficult behaviour of the person cared for",
    ),
    Observation.NEGLECT: ("Verwaarlozing", "Neglect"),
    Observation.AGGRESSION: ("Agressie", "Aggression"),
    Observation.ABUSE: ("Mishandeling", "Abuse"),
}
TASKS = {
    CareTaskKind.COOKING: ("Koken en maaltijden", "Cooking and meals"),
    CareTaskKind.TRANSPORT: ("Vervoer en begeleiding naar afspraken", "Transport and going along to appointments"),
    CareTaskKind.HOUSEHOLD: ("Huishouden", "Household"),
    CareTaskKind.ADMINISTRATION: ("Administratie en geldzaken", "Paperwork and money matters"),
    CareTaskKind.PERSONAL_CARE: ("Persoonlijke verzorging (wassen, aankleden)", "Personal care (washing, dressing)"),
    CareTaskKind.SUPERVISION: ("Toezicht en gezelschap", "Supervision and company"),
}
EFFORTS = {
    CareTaskEffort.LIGHT: ("Niet zwaar", "Not heavy"),
    CareTaskEffort.SOMEWHAT_HEAVY: ("Een beetje zwaar", "Somewhat heavy"),
    CareTaskEffort.HEAVY: ("Zwaar", "Heavy"),
    CareTaskEffort.VERY_HEAVY: ("Heel zwaar", "Very heavy"),
}
CONTACT = {
    ContactPreference.EMAIL: ("E-mail", "E-mail"),
    ContactPreference.SMS: ("Sms", "Text message"),
    ContactPreference.PHONE: ("Telefoon (de mantelzorgconsulent belt u)", "Phone (the caregiver consultant calls you)"),
    ContactPreference.POST: ("Post (een brief)", "Post (a letter)"),
}
URGENCY = {
    Urgency.NORMAL: ("Normaal", "Normal"),
    Urgency.HIGH: ("Hoog", "High"),
    Urgency.CRISIS: ("Crisis: direct actie nodig", "Crisis: act now"),
}
SOURCE_KINDS = {
    SourceKind.GP: ("Huisarts", "GP"),
    SourceKind.PRACTICE_NURSE: ("Praktijkondersteuner (POH)", "Practice nurse"),
    SourceKind.WELFARE_WORKER: ("Welzijnswerker", "Welfare worker"),
    SourceKind.NEIGHBOURHOOD_TEAM: ("Sociaal wijkteam", "Neighbourhood team"),
    SourceKind.HOME_CARE: ("Thuiszorg", "Home care"),
    SourceKind.RESIDENT: ("Bewoner", "Resident"),
    SourceKind.SELF: ("Mantelzorger zelf", "The caregiver"),
    SourceKind.OTHER: ("Anders", "Other"),
}


def one(form: Form, name: str) -> str | None:
    value = (form.get(name) or [""])[0].strip()
    return value or None


def _number(form: Form, name: str) -> str | None:
    # Dutch decimal comma; pydantic turns the text into a number or names the field.
    value = one(form, name)
    return value.replace(",", ".") if value else None


def _yes_no(form: Form, name: str) -> bool | None:
    return {"yes": True, "no": False}.get(one(form, name) or "")


def _drop_none(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v is not None}


def instrument_answers(form: Form, item_count: int) -> dict[str, Any] | None:
    """The EDIZ-plus answers when any item was answered (a partial set is refused by item)."""
    answers = [one(form, f"ediz_{n}") for n in range(1, item_count + 1)]
    if not any(answers):
        return None
    # An unanswered item becomes -1, which the instrument refuses naming the item.
    return {"id": EDIZ, "answers": [int(a) if a and a.isdigit() else -1 for a in answers]}


def care_tasks(form: Form) -> list[dict[str, Any]]:
    """The tasks the caregiver does (an effort was chosen), with hours and help."""
    return [
        _drop_none(
            {
                "task": task.value,
                "effort": effort,
                "hours_per_week": _number(form, f"task_{task}_hours"),
                "has_help": _yes_no(form, f"task_{task}_help"),
            }
        )
        for task in CareTaskKind
        if (effort := one(form, f"task_{task}_effort"))
    ]


def _caregiver(form: Form, prefix: str = "caregiver_") -> dict[str, Any]:
    return _drop_none(
        {
            "name": one(form, f"{prefix}name"),
            "email": one(form, f"{prefix}email"),
            "phone": one(form, f"{prefix}phone"),
            "birth_year": one(form, f"{prefix}birth_year"),
            "postcode": one(form, f"{prefix}postcode"),
            "municipality_code": one(form, "municipality_code") or "",
            "preferred_language": one(form, "preferred_language"),
            "contact_preference": one(form, "contact_preference"),
            "own_question": one(form, "own_question"),
        }
    )


def _care(form: Form) -> dict[str, Any]:
    return {
        "care_recipient": _drop_none(
            {
                "relationship": one(form, "recipient_relationship"),
                "condition": one(form, "recipient_condition"),
                "age": one(form, "recipient_age"),
            }
        ),
        "care_situation": _drop_none(
            {
                "hours_per_week": _number(form, "hours_per_week"),
                "duration_months": one(form, "duration_months"),
                "lives_together": _yes_no(form, "lives_together"),
                "combines_with_work": _yes_no(form, "combines_with_work"),
            }
        ),
        "care_tasks": care_tasks(form),
    }


def professional_signal(form: Form, source_kind: str, item_count: int) -> dict[str, Any]:
    """The signal form of a professional; the source kind comes from the organisation."""
    return _drop_none(
        {
            "source": _drop_none({"kind": source_kind, "reference": one(form, "source_reference")}),
            "caregiver": _caregiver(form),
            **_care(form),
            "observations": form.get("observations", []),
            "instrument": instrument_answers(form, item_count),
            "consent": _drop_none(
                {
                    "contact_caregiver": one(form, "consent_contact") == "yes",
                    "share_with_providers": one(form, "consent_share") == "yes",
                    "obtained_by": one(form, "consent_obtained_by"),
                    "obtained_at": f"{d}T12:00:00Z" if (d := one(form, "consent_obtained_at")) else None,
                }
            ),
            "urgency": one(form, "urgency"),
            "note": one(form, "note"),
        }
    )


def self_referral(form: Form, item_count: int, now: datetime) -> dict[str, Any]:
    """A caregiver refers themselves: they are the one who consents, here and now."""
    return _drop_none(
        {
            "source": {"kind": SourceKind.SELF.value},
            "caregiver": _caregiver(form),
            **_care(form),
            "instrument": instrument_answers(form, item_count),
            "consent": {
                "contact_caregiver": True,
                "share_with_providers": one(form, "consent_share") == "yes",
                "obtained_by": "de mantelzorger zelf (website)",
                "obtained_at": now.isoformat(),
            },
        }
    )


def concern(form: Form) -> dict[str, Any]:
    """A resident's concern about someone: never contacts that person (no consent), goes to
    the caregiver consultant's outreach queue (call or visit), who may call the resident back
    on what they left. Not "do not contact": that is the caregiver's own choice to make."""
    reporter = ", ".join(
        filter(None, (one(form, "reporter_name"), one(form, "reporter_phone"), one(form, "reporter_email")))
    )
    text = one(form, "concern") or ""
    return _drop_none(
        {
            "source": {"kind": SourceKind.RESIDENT.value},
            "caregiver": _drop_none(
                {
                    "name": one(form, "caregiver_name"),
                    "postcode": one(form, "caregiver_postcode"),
                    "municipality_code": one(form, "municipality_code") or "",
                }
            ),
            "observations": form.get("observations", []),
            "consent": {"contact_caregiver": False, "share_with_providers": False},
            "note": f"Zorg van een bewoner: {text}\nMelder (alleen voor de mantelzorgconsulent): {reporter}"[:4000],
        }
    )


def validate(data: dict[str, Any]) -> tuple[SignalIn | None, list[str]]:
    """The signal, or readable errors each naming its field."""
    try:
        return SignalIn.model_validate(data), []
    except ValidationError as exc:
        return None, [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
