"""Which cases need a person, and whose queue they are in: pure functions, no I/O.

A case is in a work queue while it is open and has at least one reason a person must act
(``queue_reasons``). It is in its municipality's queue when that municipality has a
caregiver consultant here, else in the fallback queue of the region the municipality belongs
to (``route``): no case reaches no one. A crisis not picked up (no contact attempt recorded)
within the deadline is also put in the region's fallback queue: the back-up."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

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
    case: Mapping[str, Any],
    referrals: Iterable[Mapping[str, Any]],
    now: datetime,
    *,
    crisis_deadline: timedelta,
    unanswered_after: timedelta,
) -> list[QueueReason]:
    """Every reason this case needs a person now, most urgent first; [] for none (or closed)."""
    if case["closed_at"] is not None:
        return []
    reasons: list[QueueReason] = []
    if case["crisis_since"] is not None:
        deadline = case["crisis_since"] + crisis_deadline
        picked_up = case["last_contact_at"] is not None and case["last_contact_at"] >= case["crisis_since"]
        if not picked_up:
            reasons.append(QueueReason("crisis_overdue" if now > deadline else "crisis", deadline))
    if case["derailed"]:
        reasons.append(QueueReason("veilig_thuis"))
    if case["escalated_at"] is not None and case["crisis_since"] is None:
        reasons.append(QueueReason("escalated"))
    if case["unmatched"]:
        reasons.append(QueueReason("unmatched"))
    if case["outreach"]:
        reasons.append(QueueReason(case["outreach"]))
    if case["contact_preference"] in ("phone", "post"):
        reasons.append(QueueReason(f"prefers_{case['contact_preference']}"))
    if case["rescreen_due_at"] is not None and case["rescreen_due_at"] <= now:
        reasons.append(QueueReason("rescreen_due", case["rescreen_due_at"]))
    if case["support_not_arrived_at"] is not None:
        reasons.append(QueueReason("support_not_arrived"))
    if any(r["status"] in _UNANSWERED and r["created_at"] + unanswered_after <= now for r in referrals):
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
    case: Mapping[str, Any],
    consultant: Mapping[str, Any],
    reasons: Iterable[QueueReason],
    *,
    covered: Iterable[str],
    regions: Mapping[str, Iterable[str]],
    default_region: str,
) -> bool:
    """A consultant sees the cases of their municipality and, as back-up for a region, that
    region's fallback queue: the cases of its municipalities without a consultant, and its
    crises past their deadline."""
    code = case["municipality_code"]
    if code == consultant["municipality_code"]:
        return True
    region = consultant["fallback_region"]
    if region is None or region_of(code, regions, default_region) != region:
        return False
    return code not in set(covered) or any(r.code == "crisis_overdue" for r in reasons)
