"""The anonymiser: from what signals knows about a signal to the event a municipality sees.

It builds each anonymised event field by field from an allow-list; nothing is copied
wholesale, so a field added to a contract later never leaks through. A stage it does not
know is dropped, and so is a value outside the vocabulary it expects. Age goes out in
10-year bands, location as the CBS district or PC4, time as the ISO week."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, get_args

from services.signals.municipalities.contract import (
    DeliveryStatus,
    MunicipalEvent,
    RecipientRole,
)
from services.signals.municipalities.districts import Area, area_of
from shared.contracts import (
    Caregiver,
    EventType,
    Need,
    ReferralStatus,
    RejectionReason,
    RiskLevel,
    SourceKind,
)

# The stages signals records (see services/signals/handlers.py) and the event each becomes.
STAGE_EVENTS: dict[str, EventType] = {
    "received": EventType.SIGNAL_RECEIVED,
    "screened": EventType.SIGNAL_SCREENED,
    "escalated": EventType.CASE_ESCALATED,
    "matched": EventType.MATCHES_PROPOSED,
    "notified": EventType.NOTIFICATION_SENT,
    "referral": EventType.REFERRAL_UPDATED,
    "follow_up": EventType.FOLLOW_UP_RECORDED,
    "rescreen_due": EventType.RESCREEN_DUE,
}
RECIPIENT_ROLES = frozenset(get_args(RecipientRole))
DELIVERY_STATUSES = frozenset(get_args(DeliveryStatus))
# A provider taking up the referral reaches the caregiver as surely as a delivered message.
CONTACT_REFERRAL_STATUSES = frozenset({ReferralStatus.ACCEPTED, ReferralStatus.IN_PROGRESS})
# Service categories are taxonomy codes (snake_case); anything else could be free text.
_CATEGORY = re.compile(r"^[a-z][a-z0-9_]{1,47}$")


@dataclass(frozen=True)
class SignalFacts:
    """The anonymous facts kept per signal; they outlive the signal's erasure."""

    municipality_code: str
    received_month: date
    source_kind: SourceKind
    area: Area | None = None
    age_band: str | None = None
    risk_level: RiskLevel | None = None
    needs: tuple[Need, ...] = ()
    hours_to_match: float | None = None
    hours_to_first_contact: float | None = None


def _utc(moment: datetime) -> datetime:
    # Weeks and months are cut in UTC; a moment without a zone is taken to be UTC.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def iso_week(moment: datetime) -> str:
    year, week, _ = _utc(moment).isocalendar()
    return f"{year}-W{week:02d}"


def week_start(moment: datetime) -> datetime:
    """Monday 00:00 UTC of the moment's ISO week."""
    day = _utc(moment).date()
    monday = day - timedelta(days=day.weekday())
    return datetime(monday.year, monday.month, monday.day, tzinfo=UTC)


def month_of(moment: datetime) -> date:
    moment = _utc(moment)
    return date(moment.year, moment.month, 1)


def age_band(birth_year: int | None, year: int) -> str | None:
    if birth_year is None or not 0 <= year - birth_year <= 120:
        return None
    age = year - birth_year
    if age >= 90:  # top-coded: the very old are few
        return "90+"
    low = age // 10 * 10
    return f"{low}-{low + 9}"


def facts_of_signal(caregiver: Caregiver, source_kind: SourceKind, received_at: datetime) -> SignalFacts:
    return SignalFacts(
        municipality_code=caregiver.municipality_code,
        received_month=month_of(received_at),
        source_kind=source_kind,
        area=area_of(caregiver.postcode),
        age_band=age_band(caregiver.birth_year, _utc(received_at).year),
    )


def _hours(start: datetime, end: datetime) -> float:
    return max(0.0, round((end - start).total_seconds() / 3600, 1))


def _vocabulary(kind: type, value: Any) -> Any:
    try:
        return kind(value)
    except (ValueError, TypeError):
        return None


def advance(
    facts: SignalFacts, stage: str, detail: dict[str, Any], occurred_at: datetime, received_at: datetime,
) -> SignalFacts:
    """The facts after this stage: the risk level once screened, the first match and contact."""
    if stage == "screened":
        result = detail.get("result", {})
        needs = (_vocabulary(Need, n) for n in result.get("needs", []))
        return replace(facts, risk_level=_vocabulary(RiskLevel, result.get("risk_level")),
                       needs=tuple(n for n in needs if n is not None))
    if stage == "matched" and detail.get("matches") and facts.hours_to_match is None:
        return replace(facts, hours_to_match=_hours(received_at, occurred_at))
    contact = (
        (stage == "notified" and detail.get("recipient_role") == "caregiver"
         and detail.get("status") == "delivered")
        or (stage == "referral" and _vocabulary(ReferralStatus, detail.get("status")) in CONTACT_REFERRAL_STATUSES)
    )
    if contact and facts.hours_to_first_contact is None:
        return replace(facts, hours_to_first_contact=_hours(received_at, occurred_at))
    return facts


def anonymise(
    stage: str, detail: dict[str, Any], facts: SignalFacts, occurred_at: datetime,
) -> tuple[EventType, MunicipalEvent] | None:
    """The anonymised event for a stage, or None for a stage the anonymiser does not know."""
    event_type = STAGE_EVENTS.get(stage)
    if event_type is None:
        return None
    specific: dict[str, Any] = {}
    if stage == "matched":
        categories = (m.get("category") for m in detail.get("matches", []) if isinstance(m, dict))
        specific["service_categories"] = sorted(
            {c for c in categories if isinstance(c, str) and _CATEGORY.match(c)})
    elif stage == "notified":
        role, status = detail.get("recipient_role"), detail.get("status")
        specific["recipient_role"] = role if role in RECIPIENT_ROLES else None
        specific["delivery_status"] = status if status in DELIVERY_STATUSES else None
    elif stage == "referral":
        specific["referral_status"] = _vocabulary(ReferralStatus, detail.get("status"))
        specific["rejection_reason"] = _vocabulary(RejectionReason, detail.get("reason_code"))
    elif stage == "follow_up":
        arrived = detail.get("support_arrived")
        specific["support_arrived"] = arrived if isinstance(arrived, bool) else None
    return event_type, MunicipalEvent(
        municipality_code=facts.municipality_code,
        week=iso_week(occurred_at),
        area=facts.area,
        age_band=facts.age_band,
        source_kind=facts.source_kind,
        risk_level=facts.risk_level,
        needs=list(facts.needs),
        hours_to_match=facts.hours_to_match,
        hours_to_first_contact=facts.hours_to_first_contact,
        **specific,
    )
