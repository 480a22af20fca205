"""Who is told what, and through which channel, pure.

- The caregiver: only with consent, never against "do not contact", in their language,
  through their preferred channel when notify has it (e-mail, SMS).
- The referrer (the partner organisation that posted the signal): always, which closes the
  loop; by webhook when it registered one, else by e-mail when it registered an address,
  else only in its status view. Never more health detail than it gave us: no scores, no
  needs, only what was proposed, what the provider answered and what happens next.
- Each proposed provider: a referral to accept or decline, only when the caregiver agreed
  to share their details with providers and did not ask to be left alone.
- The caregiver consultant: a person who acts on every case that reaches them, so always;
  the caregiver's details only with consent to share, otherwise via the referrer.

Every planned message has a dedupe key (recipient, template, case and what makes the
message different), so a redelivered event never sends a second message while a new
proposal after a re-match does."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from shared.contracts import (
    ContactPreference,
    MatchesProposed,
    ProposedMatch,
    RecipientRole,
    ReferralStatus,
    ScreeningResult,
    SelfReferralConfirmationRequested,
    SignalReceived,
)

R = RecipientRole
EMAIL, SMS, WEBHOOK, STATUS_VIEW, NONE = "email", "sms", "webhook", "status_view", "none"
# The channels a caregiver's contact preference maps to; phone and post are a person's job.
_CAREGIVER_CHANNELS = {ContactPreference.EMAIL: EMAIL, ContactPreference.SMS: SMS}


@dataclass(frozen=True)
class Referrer:
    """A partner organisation's contact for updates, as registered with the notify CLI."""

    organisation_id: UUID
    name: str
    email: str | None = None
    webhook_url: str | None = None
    language: str = "nl"


@dataclass(frozen=True)
class ReferralRef:
    """A provider referral made for one proposal, with what its message needs."""

    id: UUID
    links: Mapping[str, str]
    respond_by: str  # the local date of the reminder deadline


@dataclass(frozen=True)
class Referral:
    """A provider referral as notify keeps it: the proposal it came from, its status and its
    deadlines. ``signal`` and ``result`` are gone (None) once the caregiver was erased."""

    id: UUID
    case_id: UUID
    signal_id: UUID
    organisation_id: UUID
    correlation_id: str
    subject_key: str
    service_id: str
    service_name: str
    organization_name: str
    contact_email: str | None
    consultant: bool
    reservation_id: UUID | None
    status: ReferralStatus
    reason_code: str | None
    note: str | None
    signal: SignalReceived | None
    result: ScreeningResult | None
    remind_at: datetime | None
    escalate_at: datetime | None
    reminded_at: datetime | None
    escalated_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @property
    def answered_by(self) -> str:
        """Who answers it: the caregiver consultant for a consultant's referral, else the provider."""
        return "consultant" if self.consultant else "provider"


@dataclass(frozen=True)
class HistoryEntry:
    """One status a referral was given, by whom and when."""

    status: ReferralStatus
    reason_code: str | None
    note: str | None
    updated_by: str
    at: datetime


@dataclass(frozen=True)
class FollowUp:
    """The POM question to the caregiver whether the support arrived, one per case."""

    id: UUID
    case_id: UUID
    signal_id: UUID
    correlation_id: str
    subject_key: str
    signal: SignalReceived | None
    status: str  # scheduled | asked | answered | cancelled
    due_at: datetime
    asked_at: datetime | None
    answered_at: datetime | None
    support_arrived: bool | None
    created_at: datetime


@dataclass(frozen=True)
class Notification:
    """A message as stored, rendered once when it was planned, and as the delivery worker
    hands it to its channel (``address`` is where it goes). ``attempts``, ``retry_window_from``, ``breaker_key`` and the
    referrer's ``webhook_secret`` come with a claim for delivery."""

    id: UUID
    signal_id: UUID
    case_id: UUID
    correlation_id: str
    subject_key: str
    recipient_role: RecipientRole
    channel: str
    address: str | None
    template: str
    language: str
    subject: str
    body_text: str
    body_html: str | None = None
    dedupe_key: str = ""
    organisation_id: UUID | None = None  # the referrer whose webhook secret signs it
    referral_id: UUID | None = None
    status: str = "pending"
    last_error: str | None = None  # or why it was suppressed
    attempts: int = 0
    retry_window_from: datetime | None = None
    breaker_key: str = ""
    webhook_secret: str | None = None


@dataclass(frozen=True)
class Planned:
    recipient_role: RecipientRole
    channel: str
    address: str | None
    template: str
    language: str
    dedupe_key: str
    context: dict[str, Any] = field(default_factory=dict)
    suppressed_reason: str | None = None
    referral_id: UUID | None = None


def dedupe_key(scope: Any, role: RecipientRole, address: str | None, template: str, variant: str = "") -> str:
    """One message per scope (case, signal or referral), recipient and template; the variant
    tells genuinely different messages apart (another proposal set, another status). The
    caregiver's own address never goes in (callers pass None): their case already names
    them, and a key is an identifier that logs, indexes and operators see."""
    return ":".join(str(part) for part in (scope, role, address or "-", template, variant) if part != "")


def fingerprint(service_ids: Iterable[str]) -> str:
    """A short, order-independent name for a set of proposed services."""
    ids = sorted(set(service_ids))
    return hashlib.sha256(json.dumps(ids).encode()).hexdigest()[:16] if ids else "none"


# --- routes --------------------------------------------------------------------------------


def caregiver_route(signal: SignalReceived, channels: frozenset[str]) -> tuple[str, str | None, str | None]:
    """(channel, address, reason it is suppressed) for messages to the caregiver."""
    caregiver = signal.caregiver
    if not signal.consent.contact_caregiver:
        return NONE, None, "no consent to contact the caregiver"
    if caregiver.contact_preference is ContactPreference.DO_NOT_CONTACT:
        return NONE, None, "caregiver asked not to be contacted"
    channel = _CAREGIVER_CHANNELS.get(caregiver.contact_preference)
    address = {EMAIL: caregiver.email, SMS: caregiver.phone}.get(channel or "")
    if channel is None or channel not in channels:
        return NONE, None, f"no channel for contact preference {caregiver.contact_preference.value}"
    if not address:
        return NONE, None, f"no {channel} address for the caregiver"
    return channel, address, None


def referrer_route(referrer: Referrer | None, organisation_name: str) -> tuple[str, str, str]:
    """(channel, address, language): the status view is the referrer's channel of last resort."""
    if referrer is None:
        return STATUS_VIEW, organisation_name, "nl"
    if referrer.webhook_url:
        return WEBHOOK, referrer.webhook_url, referrer.language
    if referrer.email:
        return EMAIL, referrer.email, referrer.language
    return STATUS_VIEW, referrer.name, referrer.language


def referral_blocker(signal: SignalReceived, match: ProposedMatch) -> str | None:
    """Why no referral may be made for this proposal, or None. The consultant always gets it."""
    if match.consultant:
        return None
    if not signal.consent.share_with_providers:
        return "no consent to share details with providers"
    if signal.caregiver.contact_preference is ContactPreference.DO_NOT_CONTACT:
        return "caregiver asked not to be contacted"
    return None


# --- contexts ------------------------------------------------------------------------------


_SERVICE_FIELDS = (
    "service_id",
    "service_name",
    "organization_name",
    "consultant",
    "contact_email",
    "contact_phone",
    "address",
    "url",
)


def _service(match: ProposedMatch | Referral) -> dict[str, Any]:
    data = match.model_dump(mode="json") if isinstance(match, ProposedMatch) else vars(match)
    return {k: data.get(k) for k in _SERVICE_FIELDS}


def referrer_context(signal: SignalReceived, signal_id: UUID) -> dict[str, Any]:
    return {
        "organisation": signal.organisation_name,
        "signal_id": str(signal_id),
        "source_reference": signal.source.reference,
    }


def caregiver_details(signal: SignalReceived, result: ScreeningResult | None, share: bool) -> dict[str, Any]:
    """What a provider or consultant needs to act; personal details only with consent."""
    caregiver = signal.caregiver
    details: dict[str, Any] = {
        "shared": share,
        "municipality_code": caregiver.municipality_code,
        "urgency": signal.urgency.value,
        "needs": [n.value for n in result.needs] if result else [],
    }
    if share:
        details |= {
            "name": caregiver.name,
            "email": caregiver.email,
            "phone": caregiver.phone,
            "postcode": caregiver.postcode,
            "language": caregiver.preferred_language.value,
            "contact_preference": caregiver.contact_preference.value,
        }
    return details


# --- plans ---------------------------------------------------------------------------------


def plan_proposals(
    event: MatchesProposed,
    *,
    referrer: Referrer | None,
    rematch: bool,
    channels: frozenset[str],
    referrals: Mapping[str, ReferralRef],
    social_map_url: str | None = None,
) -> list[Planned]:
    """Messages for one set of proposals: the caregiver's overview, the referrer's update and
    one referral per provider (``referrals`` holds those that may be made, by service id)."""
    signal = event.signal
    proposal_set = fingerprint(m.service_id for m in event.matches)
    base = referrer_context(signal, event.signal_id) | {
        "matches": [_service(m) for m in event.matches],
        "no_match_reason": event.no_match_reason,
        "rematch": rematch,
    }
    planned: list[Planned] = []

    # One overview per case: a second organisation's signal about the same caregiver changes
    # the proposals a little, and a second, slightly different overview would only confuse.
    # A re-match after a decline is news for the caregiver, so it gets its own message.
    overview = _to_caregiver(
        signal,
        channels,
        "caregiver_proposals",
        event.case_id,
        f"rematch:{proposal_set}" if rematch else "",
        base | {"status_url": signal.status_url, "social_map_url": social_map_url},
    )
    planned.append(overview)
    reason = overview.suppressed_reason

    r_channel, r_address, r_language = referrer_route(referrer, signal.organisation_name)
    planned.append(
        Planned(
            R.REFERRER,
            r_channel,
            r_address,
            "referrer_update",
            r_language,
            dedupe_key(event.signal_id, R.REFERRER, r_address, "referrer_update", proposal_set),
            base | {"caregiver_contacted": reason is None, "caregiver_reason": reason},
        )
    )

    for match in event.matches:
        role = R.CONSULTANT if match.consultant else R.PROVIDER
        template = "consultant_referral" if match.consultant else "provider_referral"
        ref = referrals.get(match.service_id)
        if ref is None:
            planned.append(
                Planned(
                    role,
                    NONE,
                    match.contact_email,
                    template,
                    "nl",
                    dedupe_key(event.case_id, role, match.service_id, template),
                    base,
                    referral_blocker(signal, match) or "no referral could be made",
                )
            )
            continue
        context = base | {
            "referral_id": str(ref.id),
            "service": _service(match),
            "respond_by": ref.respond_by,
            "covers_needs": [n.value for n in match.explanation.covers_needs],
            **ref.links,
            "caregiver": caregiver_details(signal, event.result, signal.consent.share_with_providers),
        }
        if match.contact_email:
            planned.append(
                Planned(
                    role,
                    EMAIL,
                    match.contact_email,
                    template,
                    "nl",
                    dedupe_key(ref.id, role, match.contact_email, template),
                    context,
                    referral_id=ref.id,
                )
            )
        else:
            planned.append(
                Planned(
                    role,
                    NONE,
                    None,
                    template,
                    "nl",
                    dedupe_key(ref.id, role, None, template),
                    context,
                    "no e-mail address on the social map: the referral waits in the provider API",
                    referral_id=ref.id,
                )
            )
    return planned


def plan_referral_update(referral: Referral, referrer: Referrer | None) -> Planned:
    """The referrer hears about every status a provider (or the system) gives its referral."""
    signal = referral.signal
    name = signal.organisation_name if signal else (referrer.name if referrer else "")
    channel, address, language = referrer_route(referrer, name)
    context = (
        referrer_context(signal, referral.signal_id)
        if signal
        else {
            "organisation": name,
            "signal_id": str(referral.signal_id),
            "source_reference": None,
        }
    ) | {
        "referral_id": str(referral.id),
        "service": _service(referral),
        "status": referral.status.value,
        "reason_code": referral.reason_code,
    }
    return Planned(
        R.REFERRER,
        channel,
        address,
        "referrer_referral_status",
        language,
        dedupe_key(referral.id, R.REFERRER, address, "referrer_referral_status", referral.status.value),
        context,
        referral_id=referral.id,
    )


def _signal_of(referral: Referral) -> SignalReceived:
    """The signal of a referral still waiting for its provider (an erasure cancels those)."""
    if referral.signal is None:
        raise ValueError(f"referral {referral.id} was erased")
    return referral.signal


def referral_context(referral: Referral, links: Mapping[str, str], respond_by: str) -> dict[str, Any]:
    signal = _signal_of(referral)
    return referrer_context(signal, referral.signal_id) | {
        "referral_id": str(referral.id),
        "service": _service(referral),
        "respond_by": respond_by,
        "caregiver": caregiver_details(signal, referral.result, signal.consent.share_with_providers),
        **links,
    }


def plan_reminder(referral: Referral, links: Mapping[str, str], respond_by: str) -> Planned:
    role = R.CONSULTANT if referral.consultant else R.PROVIDER
    address = referral.contact_email
    return Planned(
        role,
        EMAIL if address else NONE,
        address,
        "provider_reminder",
        "nl",
        dedupe_key(referral.id, role, address, "provider_reminder"),
        referral_context(referral, links, respond_by),
        None if address else "no e-mail address on the social map",
        referral_id=referral.id,
    )


def plan_escalation(referral: Referral, consultant_email: str | None, respond_by: str) -> Planned:
    """The provider did not answer in time: the area's caregiver consultant steps in."""
    municipality = _signal_of(referral).caregiver.municipality_code
    return Planned(
        R.CONSULTANT,
        EMAIL if consultant_email else NONE,
        consultant_email,
        "consultant_escalation",
        "nl",
        dedupe_key(referral.id, R.CONSULTANT, consultant_email, "consultant_escalation"),
        referral_context(referral, {}, respond_by),
        None if consultant_email else f"no caregiver consultant known for {municipality}",
        referral_id=referral.id,
    )


def plan_follow_up(
    follow_up: FollowUp, channels: frozenset[str], links: Mapping[str, str], services: Sequence[Referral]
) -> Planned:
    """POM: ask the caregiver whether the support arrived, the way they want to be asked."""
    if follow_up.signal is None:  # an erasure cancels the follow-ups it blanks
        raise ValueError(f"follow-up {follow_up.id} was erased")
    signal = follow_up.signal
    context = {"services": [_service(s) for s in services], "status_url": signal.status_url, **links}
    return _to_caregiver(signal, channels, "caregiver_followup", follow_up.case_id, "", context)


def plan_confirmation(request: SelfReferralConfirmationRequested) -> Planned:
    """The double opt-in of the public front door: the link that confirms a submission."""
    role = R.RESIDENT if request.concern else R.CAREGIVER
    return Planned(
        role,
        EMAIL,
        request.email,
        "selfreferral_confirmation",
        request.language.value,
        dedupe_key(request.referral_id, role, request.email, "selfreferral_confirmation"),
        {"name": request.name or "", "confirm_url": request.confirm_url, "concern": request.concern},
    )


def should_follow_up(planned: Iterable[Planned]) -> bool:
    """Only a caregiver who was told about support is asked whether it arrived."""
    return any(p.recipient_role == R.CAREGIVER and p.suppressed_reason is None for p in planned)


def _webhook_data(planned: Planned) -> dict[str, Any]:
    context = planned.context
    if planned.template == "referrer_update":
        return {
            "proposals": [
                {k: m[k] for k in ("service_name", "organization_name", "consultant")} for m in context["matches"]
            ],
            "no_match_reason": context["no_match_reason"],
            "rematch": context["rematch"],
            "caregiver_contacted": context["caregiver_contacted"],
        }
    return {k: context[k] for k in ("referral_id", "service", "status", "reason_code")}


def webhook_document(
    notification_id: UUID, planned: Planned, subject: str, text: str, occurred_at: str
) -> dict[str, Any]:
    """The JSON a partner's webhook receives (documented in WEBHOOKS.md)."""
    return {
        "id": str(notification_id),
        "type": planned.template,
        "occurred_at": occurred_at,
        "signal_id": planned.context["signal_id"],
        "source_reference": planned.context["source_reference"],
        "language": planned.language,
        "subject": subject,
        "text": text,
        "data": _webhook_data(planned),
    }


# --- the caregiver consultant's actions (services/casework) -----------------------------------


def plan_handoff(event: MatchesProposed, ref: ReferralRef, note: str | None) -> Planned:
    """The Wmo desk's referral for a kitchen-table conversation: a referral like any other,
    with the consultant's note."""
    signal, desk = event.signal, event.matches[0]
    context = referrer_context(signal, event.signal_id) | {
        "referral_id": str(ref.id),
        "service": _service(desk),
        "respond_by": ref.respond_by,
        **ref.links,
        "caregiver": caregiver_details(signal, event.result, signal.consent.share_with_providers),
        "note": note,
    }
    address = desk.contact_email
    return Planned(
        R.PROVIDER,
        EMAIL if address else NONE,
        address,
        "wmo_handoff",
        "nl",
        dedupe_key(ref.id, R.PROVIDER, address, "wmo_handoff"),
        context,
        None if address else "no e-mail address for the Wmo desk",
        referral_id=ref.id,
    )


def plan_closed(
    case_id: UUID, signal: SignalReceived, reason: str, reason_text: str, channels: frozenset[str]
) -> Planned:
    """The caregiver hears the case was closed (with consent); after a death, a short message
    of condolence instead of any further question about the care."""
    context = {"deceased": reason == "deceased", "reason_text": reason_text}
    return _to_caregiver(signal, channels, "caregiver_closed", case_id, reason, context)


def _to_caregiver(
    signal: SignalReceived,
    channels: frozenset[str],
    template: str,
    case_id: UUID,
    variant: str,
    context: dict[str, Any],
) -> Planned:
    """A message to the caregiver about their case, the way they want to be reached (or
    suppressed, saying why), in their language."""
    channel, address, suppressed = caregiver_route(signal, channels)
    return Planned(
        R.CAREGIVER,
        channel,
        address,
        template,
        signal.caregiver.preferred_language.value,
        dedupe_key(case_id, R.CAREGIVER, None, template, variant),
        {"caregiver_name": signal.caregiver.name or ""} | context,
        suppressed,
    )
