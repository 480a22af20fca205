"""From one pipeline event to one anonymous record, field by field from an allow-list. Pure.

Each record comes from a single event that carries everything it needs (the signal rides
along on ``signal.screened``, ``matches.proposed`` and ``referral.updated``), so no event
is ever joined to another by a signal or case id. Nothing is copied wholesale: a field
added to a contract later never leaks through, and a value outside the vocabulary is
dropped. Location is the CBS district (else PC4), age a 10-year band, time the ISO week
and month of the signal, time to support an hours band."""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace
from datetime import UTC, datetime

from services.municipalities.districts import area_of
from services.municipalities.domain import Record, hours_band
from shared.contracts import (
    FollowUpRecorded,
    MatchesProposed,
    Need,
    ReferralStatus,
    ReferralUpdated,
    RejectionReason,
    RiskLevel,
    SignalReceived,
    SignalScreened,
    SourceKind,
)

# Matching's reasons for proposing nothing (services/matching/domain.py), as codes: the gaps
# in the social map a municipality wants to see. Anything else is dropped (could be text).
NO_MATCH_REASONS = {
    "no needs to match": "no_needs",
    "no services in area": "no_services_in_area",
    "no active services": "no_active_services",
    "not eligible": "not_eligible",
    "needs not covered": "needs_not_covered",
    "no capacity": "no_capacity",
    "no caregiver consultant for this area on the social map": "no_consultant",
}
# Service categories are taxonomy codes (snake_case); anything else could be free text.
_CATEGORY = re.compile(r"^[a-z][a-z0-9_]{1,47}$")


def person_token(municipality_code: str, subject: str) -> str:
    """Counts persons in a waiting group; held only while the record waits, never released."""
    return hashlib.sha256(f"{municipality_code}:{subject}".encode()).hexdigest()


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def iso_week(moment: datetime) -> str:
    year, week, _ = _utc(moment).isocalendar()
    return f"{year}-W{week:02d}"


def month_of(moment: datetime) -> str:
    return f"{_utc(moment):%Y-%m}"


def age_band(birth_year: int | None, year: int) -> str | None:
    if birth_year is None or not 0 <= year - birth_year <= 120:
        return None
    age = year - birth_year
    if age >= 90:  # top-coded: the very old are few
        return "90+"
    low = age // 10 * 10
    return f"{low}-{low + 9}"


def _vocabulary(kind: type, value: object) -> str | None:
    try:
        return kind(value).value
    except (ValueError, TypeError):
        return None


def _hours(start: datetime, end: datetime) -> str:
    return hours_band(max(0.0, (end - start).total_seconds() / 3600))


def _base(
    kind: str,
    subject: str,
    arrived: datetime,
    signal: SignalReceived,
    risk_level: RiskLevel | None = None,
    needs: list[Need] | None = None,
) -> Record:
    """What every record says, from the signal it is about; the kinds add their own."""
    caregiver = signal.caregiver
    area = area_of(caregiver.postcode)
    return Record(
        person=person_token(caregiver.municipality_code, subject),
        arrived=arrived,
        kind=kind,
        municipality_code=caregiver.municipality_code,
        month=month_of(signal.received_at),
        week=iso_week(signal.received_at),
        area=area.code if area else None,
        age_band=age_band(caregiver.birth_year, _utc(signal.received_at).year),
        source_kind=_vocabulary(SourceKind, signal.source.kind),
        risk_level=_vocabulary(RiskLevel, risk_level),
        needs=tuple(sorted({n for n in (_vocabulary(Need, x) for x in needs or []) if n})),
    )


def from_screened(p: SignalScreened, subject: str, arrived: datetime) -> Record:
    return _base("signal.screened", subject, arrived, p.signal, p.result.risk_level, p.result.needs)


def from_matches(p: MatchesProposed, subject: str, arrived: datetime) -> Record:
    categories = {m.category for m in p.matches if not m.consultant and _CATEGORY.match(m.category)}
    return replace(
        _base("matches.proposed", subject, arrived, p.signal, p.result.risk_level, p.result.needs),
        service_categories=tuple(sorted(categories)),
        no_match_reason=NO_MATCH_REASONS.get(p.no_match_reason or ""),
        time_to_support=_hours(p.signal.received_at, p.proposed_at) if p.matches else None,
    )


def from_referral(p: ReferralUpdated, subject: str, arrived: datetime) -> Record | None:
    """None without the signal: then the municipality is not known from this event alone."""
    if p.signal is None:
        return None
    result = p.result
    accepted = p.status in (ReferralStatus.ACCEPTED, ReferralStatus.IN_PROGRESS)
    return replace(
        _base(
            "referral.updated",
            subject,
            arrived,
            p.signal,
            result.risk_level if result else None,
            result.needs if result else None,
        ),
        referral_status=_vocabulary(ReferralStatus, p.status),
        rejection_reason=_vocabulary(RejectionReason, p.reason_code),
        time_to_support=_hours(p.signal.received_at, p.updated_at) if accepted else None,
    )


def from_follow_up(p: FollowUpRecorded, subject: str, arrived: datetime) -> Record | None:
    """Only the municipality, the month and the answer: the event carries nothing else."""
    if p.municipality_code is None:
        return None
    return Record(
        person=person_token(p.municipality_code, subject),
        arrived=arrived,
        kind="followup.recorded",
        municipality_code=p.municipality_code,
        month=month_of(p.recorded_at),
        week=iso_week(p.recorded_at),
        support_arrived=p.support_arrived,
    )
