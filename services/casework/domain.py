"""Which cases need a person, and whose queue they are in: pure functions, no I/O.

A case is in a work queue while it is open and has at least one reason a person must act
(``queue_reasons``). It is in its municipality's queue when that municipality has a
caregiver consultant here, else in the fallback queue of the region the municipality belongs
to (``route``): no case reaches no one. A crisis not picked up (no contact attempt recorded)
within the deadline is also put in the region's fallback queue: the back-up."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from shared.contracts import (
    DERAILED_CARE,
    ContactPreference,
    ReferralStatus,
    RiskLevel,
    ScreeningResult,
    SignalReceived,
    Urgency,
)

MUNICIPALITY, REGIONAL_FALLBACK = "municipality", "regional_fallback"
# Referral statuses in which the provider has not answered yet.
_UNANSWERED = {ReferralStatus.REQUESTED}


# --- the consultant's view of cases (the repository makes these from its rows, by column name) ----


@dataclass(frozen=True)
class Consultant:
    id: UUID
    name: str
    email: str
    municipality_code: str
    # The region whose fallback queue this consultant also serves (the back-up), if any.
    fallback_region: str | None = None
    created_at: datetime | None = None
    # Only when read for a signed-in session: the token its forms must carry.
    csrf_token: str | None = None


@dataclass(frozen=True)
class WmoDesk:
    municipality_code: str
    name: str
    email: str


@dataclass(frozen=True)
class Case:
    """One caregiver's case as the consultant sees it; ``personal`` holds the latest signal's
    caregiver and care recipient, ``result`` the case's screening judgement (both as JSON)."""

    id: UUID
    subject: str  # the caregiver pseudonym (the events' key)
    municipality_code: str
    created_at: datetime
    updated_at: datetime
    personal: dict[str, Any] = field(default_factory=dict)
    risk_level: str | None = None
    result: dict[str, Any] | None = None
    crisis_since: datetime | None = None
    derailed: bool = False
    escalated_at: datetime | None = None
    escalation_reason: str | None = None
    outreach: str | None = None  # no_consent | no_channel
    contact_preference: str | None = None
    proposals: list[dict[str, Any]] = field(default_factory=list)
    unmatched: bool = False
    no_match_reason: str | None = None
    rescreen_due_at: datetime | None = None
    support_not_arrived_at: datetime | None = None
    last_contact_at: datetime | None = None
    handed_off_at: datetime | None = None
    closed_at: datetime | None = None
    close_reason: str | None = None


@dataclass(frozen=True)
class CaseSignal:
    """A signal of the case; ``personal`` is the whole signal as received (personal data)."""

    signal_id: UUID
    case_id: UUID
    received_at: datetime
    organisation_name: str
    source_kind: str
    urgency: str
    observations: list[str]
    consent: dict[str, Any]
    personal: dict[str, Any]
    own_result: dict[str, Any] | None = None
    taken_up_at: datetime | None = None  # when the referrer was told a person has it


@dataclass(frozen=True)
class CaseReferral:
    case_id: UUID
    service_id: str
    service_name: str
    status: str
    created_at: datetime
    updated_at: datetime
    referral_id: UUID | None = None
    reason_code: str | None = None


@dataclass(frozen=True)
class CaseEvent:
    """A line of the case's history; ``personal`` holds free text (notes, outcomes)."""

    id: int
    case_id: UUID
    at: datetime
    kind: str
    detail: dict[str, Any]
    personal: dict[str, Any] | None = None
    by: str | None = None


@dataclass(frozen=True)
class QueueReason:
    code: str
    deadline: datetime | None = None


def is_crisis(signal: SignalReceived, risk_level: str | None) -> bool:
    return (
        signal.urgency is Urgency.CRISIS
        or risk_level == RiskLevel.CRISIS.value
        or bool(DERAILED_CARE & set(signal.observations))
    )


def is_derailed(signal: SignalReceived, result: ScreeningResult | None = None) -> bool:
    """Signs of abuse, neglect or aggression: the meldcode applies, Veilig Thuis can advise.
    After screening the observations travel no further; its result says so instead."""
    return bool(DERAILED_CARE & set(signal.observations)) or (result is not None and result.derailed_care)


def outreach(signal: SignalReceived) -> str | None:
    """Why nobody but a person can reach this caregiver: no consent to contact them, or no
    address for the channel they prefer. "Do not contact" is respected: no outreach."""
    caregiver = signal.caregiver
    if caregiver.contact_preference is ContactPreference.DO_NOT_CONTACT:
        return None
    if not signal.consent.contact_caregiver:
        return "no_consent"
    usable = {
        ContactPreference.EMAIL: caregiver.email,
        ContactPreference.SMS: caregiver.phone,
        ContactPreference.PHONE: caregiver.phone,
        ContactPreference.POST: caregiver.postcode,
    }[caregiver.contact_preference]
    return None if usable else "no_channel"


def queue_reasons(
    case: Case,
    referrals: Iterable[CaseReferral],
    now: datetime,
    *,
    crisis_deadline: timedelta,
    unanswered_after: timedelta,
) -> list[QueueReason]:
    """Every reason this case needs a person now, most urgent first; [] for none (or closed)."""
    if case.closed_at is not None:
        return []
    reasons: list[QueueReason] = []
    if case.crisis_since is not None:
        deadline = case.crisis_since + crisis_deadline
        picked_up = case.last_contact_at is not None and case.last_contact_at >= case.crisis_since
        if not picked_up:
            reasons.append(QueueReason("crisis_overdue" if now > deadline else "crisis", deadline))
    if case.derailed:
        reasons.append(QueueReason("veilig_thuis"))
    if case.escalated_at is not None and case.crisis_since is None:
        reasons.append(QueueReason("escalated"))
    if case.unmatched:
        reasons.append(QueueReason("unmatched"))
    if case.outreach:
        reasons.append(QueueReason(case.outreach))
    if case.contact_preference in ("phone", "post"):
        reasons.append(QueueReason(f"prefers_{case.contact_preference}"))
    if case.rescreen_due_at is not None and case.rescreen_due_at <= now:
        reasons.append(QueueReason("rescreen_due", case.rescreen_due_at))
    if case.support_not_arrived_at is not None:
        reasons.append(QueueReason("support_not_arrived"))
    if any(r.status in _UNANSWERED and r.created_at + unanswered_after <= now for r in referrals):
        reasons.append(QueueReason("referral_unanswered"))
    return reasons


def region_of(municipality_code: str, regions: Mapping[str, Iterable[str]], default_region: str) -> str:
    for name, codes in sorted(regions.items()):
        if municipality_code in codes:
            return name
    return default_region


def route(
    municipality_code: str,
    covered: Iterable[str],
    regions: Mapping[str, Iterable[str]],
    default_region: str,
) -> tuple[str, str]:
    """(queue kind, name): the municipality's own queue if it has a consultant here, else
    its region's fallback queue."""
    if municipality_code in set(covered):
        return MUNICIPALITY, municipality_code
    return REGIONAL_FALLBACK, region_of(municipality_code, regions, default_region)


def consultant_signal(
    latest: SignalReceived,
    *,
    signal_id: Any,
    organisation_id: Any,
    now: datetime,
    instrument_id: str,
    answers: list[int],
    consultant_name: str,
) -> SignalReceived:
    """The consultant's own signal about the caregiver: the latest signal's facts with the
    instrument answers from the conversation, so screening re-screens the case with them."""
    data = latest.model_dump(mode="json")
    return SignalReceived.model_validate(
        data
        | {
            "signal_id": str(signal_id),
            "organisation_id": str(organisation_id),
            "organisation_name": f"Mantelzorgconsulent {consultant_name}",
            "received_at": now.isoformat(),
            "source": {"kind": "other", "reference": "mantelzorgconsulent"},
            "instrument": {"id": instrument_id, "answers": answers},
            # The crisis was reported already; these answers measure the burden, nothing more.
            "urgency": Urgency.NORMAL.value,
            "observations": [o for o in data["observations"] if o not in DERAILED_CARE],
            "note": None,
            # Sealed anew by the caller: the latest signal's ciphertext holds its own answers.
            "sealed": None,
        }
    )


def may_see(
    case: Case,
    consultant: Consultant,
    reasons: Iterable[QueueReason],
    *,
    covered: Iterable[str],
    regions: Mapping[str, Iterable[str]],
    default_region: str,
) -> bool:
    """A consultant sees the cases of their municipality and, as back-up for a region, that
    region's fallback queue: the cases of its municipalities without a consultant, and its
    crises past their deadline."""
    code = case.municipality_code
    if code == consultant.municipality_code:
        return True
    region = consultant.fallback_region
    if region is None or region_of(code, regions, default_region) != region:
        return False
    return code not in set(covered) or any(r.code == "crisis_overdue" for r in reasons)
