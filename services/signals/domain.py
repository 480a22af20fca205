"""Pure logic of the signals service: request fingerprints, the outgoing event, and the
status view assembled from the stages that downstream events recorded.

The status view is the referrer's, and shows only what follows from its own signal: its
own screening, the support proposed for it, its referrals. Never the case it was merged
into (another organisation's signals, levels, sources, counts or the case id): an
escalation shows only that a caregiver consultant is involved, never why."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from services.signals.schemas import (
    ErasureCaregiver,
    FollowUpView,
    NotificationView,
    ReferralView,
    ScreeningView,
    SignalIn,
    SignalStatus,
    TimelineEntry,
)
from shared.contracts import CaregiverErased, ErasureScope, SignalReceived, SourceKind
from shared.instruments import Catalogue
from shared.pseudonym import identity_basis, pseudonymise


@dataclass(frozen=True)
class Signal:
    """A stored signal as its status view needs it (the body stays sealed in the store)."""

    id: UUID
    status: str
    received_at: datetime
    case_id: UUID | None = None
    caregiver_pseudonym: str | None = None


@dataclass(frozen=True)
class StageRecord:
    """One step of a signal's timeline, recorded from a downstream event."""

    stage: str
    occurred_at: datetime
    detail: dict[str, Any]


@dataclass(frozen=True)
class Requester:
    """Who asks for an erasure: an organisation (for its own signals) or a privacy officer (for the person)."""

    id: UUID
    name: str
    role: str  # partner | privacy_officer

    @property
    def scope(self) -> ErasureScope:
        return ErasureScope.CAREGIVER if self.role == "privacy_officer" else ErasureScope.SIGNALS


@dataclass(frozen=True)
class SelfReferral:
    """A self-referral or a resident's concern waiting for (or past) its confirmation."""

    id: UUID
    concern: bool
    body: dict[str, Any] | None
    signal_id: UUID | None
    live: bool


@dataclass(frozen=True)
class ErasureRecord:
    """An erasure as its requester sees it; ``unpublished``: its events still waiting for the relay."""

    id: UUID
    requested_at: datetime
    scope: str
    unpublished: int


class Stage(StrEnum):
    """A step in a signal's timeline, recorded from the events downstream services emit."""

    RECEIVED = "received"
    SCREENED = "screened"
    ESCALATED = "escalated"
    MATCHED = "matched"
    NOTIFIED = "notified"
    REFERRAL = "referral"
    FOLLOW_UP = "follow_up"
    RESCREEN_DUE = "rescreen_due"
    TAKEN_UP = "taken_up"
    CLOSED = "closed"


# How far along the pipeline a signal is; its status is the furthest of these it reached (the
# funnel the metrics count). The other stages only add to the timeline: rank -1 never wins, so
# a referral's answer, the follow-up, a due re-screen or the consultant's steps leave it as is.
PROGRESS = (Stage.RECEIVED, Stage.SCREENED, Stage.ESCALATED, Stage.MATCHED, Stage.NOTIFIED)
STAGE_RANK: dict[Stage, int] = {stage: PROGRESS.index(stage) if stage in PROGRESS else -1 for stage in Stage}


@dataclass(frozen=True)
class Organisation:
    id: UUID
    name: str
    kind: str


def request_hash(signal: SignalIn) -> str:
    """Fingerprint of the request's meaning, so a retry with other whitespace still matches."""
    canonical = json.dumps(signal.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def instrument_errors(signal: SignalIn, catalogue: Catalogue) -> list[dict[str, Any]]:
    """Errors in the instrument answers, shaped like request-validation errors."""
    if signal.instrument is None:
        return []
    if signal.instrument.id not in catalogue:
        known = ", ".join(i.id for i in catalogue.all())
        return [
            {
                "loc": ("body", "instrument", "id"),
                "type": "unknown_instrument",
                "msg": f"unknown instrument {signal.instrument.id!r}; known: {known}",
            }
        ]
    instrument = catalogue.get(signal.instrument.id)
    return [
        {
            "loc": ("body", "instrument", "answers", *(() if e.item is None else (e.item - 1,))),
            "type": "instrument_answer",
            "msg": e.message,
        }
        for e in instrument.validate_answers(signal.instrument.answers)
    ]


def caregiver_pseudonym(key: bytes, signal: SignalIn, signal_id: UUID) -> str:
    c = signal.caregiver
    basis = identity_basis(name=c.name, birth_year=c.birth_year, postcode=c.postcode, email=c.email, phone=c.phone)
    # Without identifying fields the signal cannot be merged with others: it stands alone.
    return pseudonymise(key, basis or f"signal:{signal_id}")


def identity_pseudonyms(key: bytes, caregiver: ErasureCaregiver) -> list[str]:
    """The pseudonyms signals about this caregiver may carry: one per kind of identity the
    request gives (a signal is filed under its strongest kind, see ``identity_basis``)."""
    c = caregiver
    bases = [
        identity_basis(name=c.name, birth_year=c.birth_year, postcode=c.postcode, email=None, phone=None),
        identity_basis(name=None, birth_year=None, postcode=None, email=c.email, phone=None),
        identity_basis(name=None, birth_year=None, postcode=None, email=None, phone=c.phone),
    ]
    return [pseudonymise(key, basis) for basis in bases if basis]


def subject_digest(pseudonym: str) -> str:
    """How the erasure audit log names a caregiver: a digest of the pseudonym, which points
    back to nobody without the identity and the pseudonym key."""
    return hashlib.sha256(pseudonym.encode()).hexdigest()


def erasure_request_digest(
    requester_id: UUID,
    scope: str,
    pseudonyms: list[str],
    signal_ids: list[UUID] | None,
) -> str:
    """The meaning of an erasure request, so the same request twice is one erasure."""
    canonical = json.dumps([str(requester_id), scope, sorted(pseudonyms), sorted(str(i) for i in signal_ids or [])])
    return hashlib.sha256(canonical.encode()).hexdigest()


def caregiver_erased(
    erasure_id: UUID,
    requester: Requester,
    pseudonym: str,
    signals: Sequence[Signal],
    requested_at: datetime,
) -> CaregiverErased:
    """The event that carries an erasure of one caregiver to the other services."""
    theirs = [s for s in signals if s.caregiver_pseudonym == pseudonym]
    # A withdrawal leaves the case: it holds other organisations' signals.
    cases = (
        [] if requester.scope is ErasureScope.SIGNALS else list(dict.fromkeys(s.case_id for s in theirs if s.case_id))
    )
    return CaregiverErased(
        erasure_id=erasure_id,
        caregiver_pseudonym=pseudonym,
        signal_ids=[s.id for s in theirs],
        case_ids=cases,
        requested_at=requested_at,
        requested_by=requester.id,
        scope=requester.scope,
    )


def received_event(
    signal: SignalIn,
    *,
    signal_id: UUID,
    organisation: Organisation,
    received_at: datetime,
    status_url: str | None = None,
) -> SignalReceived:
    return SignalReceived(
        signal_id=signal_id,
        organisation_id=organisation.id,
        organisation_name=organisation.name,
        received_at=received_at,
        status_url=status_url,
        **signal.model_dump(),
    )


# Which source kinds an organisation of a kind may post as: its own, and the professions
# that work inside it (the practice nurse in a GP practice, the welfare worker in a team).
_SOURCE_KINDS = {
    SourceKind.GP: {SourceKind.GP, SourceKind.PRACTICE_NURSE},
    SourceKind.NEIGHBOURHOOD_TEAM: {SourceKind.NEIGHBOURHOOD_TEAM, SourceKind.WELFARE_WORKER},
    SourceKind.WELFARE_WORKER: {SourceKind.WELFARE_WORKER, SourceKind.NEIGHBOURHOOD_TEAM},
}


def allowed_source_kinds(organisation_kind: str) -> list[SourceKind]:
    kind = SourceKind(organisation_kind)
    return sorted(_SOURCE_KINDS.get(kind, {kind}))


def source_kind_errors(signal: SignalIn, organisation: Organisation) -> list[dict[str, Any]]:
    """A GP key may not post as a resident: the source kind is bound to the organisation's kind."""
    allowed = allowed_source_kinds(organisation.kind)
    if signal.source.kind in allowed:
        return []
    return [
        {
            "loc": ("body", "source", "kind"),
            "type": "source_kind_for_organisation",
            "msg": f"an organisation of kind {organisation.kind!r} posts as {' or '.join(allowed)}",
        }
    ]


CONSULTANT_INVOLVED = "a caregiver consultant is involved"
# A person (the municipality's consultant, or the region's fallback) has the case in their
# work queue. Dutch first: it is read by Dutch referrers.
TAKEN_UP = "een mantelzorgconsulent heeft dit opgepakt (a caregiver consultant has taken this up)"
CLOSED = "de mantelzorgconsulent heeft de zaak afgesloten (the caregiver consultant closed the case)"

# What the referrer may see of its signal's screening (the stage keeps only these anyway;
# stages recorded before the boundary held more).
_SCREENING_FIELDS = set(ScreeningView.model_fields) - {"case_id"}


def _summary(stage: str, detail: dict[str, Any]) -> str | None:
    match stage:
        case Stage.SCREENED:
            return f"risk level {detail['result']['risk_level']}"
        case Stage.ESCALATED:
            return CONSULTANT_INVOLVED
        case Stage.MATCHED:
            n = len(detail.get("matches", []))
            return f"{n} proposal(s)" if n else detail.get("no_match_reason")
        case Stage.NOTIFIED:
            return f"{detail['recipient_role']} via {detail['channel']}: {detail['status']}"
        case Stage.REFERRAL:
            return f"{detail['service_name']}: {detail['status']}"
        case Stage.FOLLOW_UP:
            return "support arrived" if detail["support_arrived"] else "support did not arrive"
        case Stage.RESCREEN_DUE:
            return "re-screening due"
        case Stage.TAKEN_UP:
            return TAKEN_UP
        case Stage.CLOSED:
            return CLOSED
    return None


def status_view(signal: Signal, stages: Sequence[StageRecord]) -> SignalStatus:
    screening = escalation = no_match_reason = None
    matches: list[dict[str, Any]] = []
    notifications: list[NotificationView] = []
    referrals: dict[str, ReferralView] = {}
    follow_up = taken_up = closed = None
    for row in stages:
        detail = row.detail
        if row.stage == Stage.SCREENED:
            screening = ScreeningView(**{k: v for k, v in detail["result"].items() if k in _SCREENING_FIELDS})
        elif row.stage == Stage.ESCALATED:
            escalation = {"at": row.occurred_at, "summary": CONSULTANT_INVOLVED}
        elif row.stage == Stage.MATCHED:
            matches = detail.get("matches", [])
            no_match_reason = detail.get("no_match_reason")
        elif row.stage == Stage.NOTIFIED:
            # Stored under the event's field names; the view calls the role "recipient".
            notifications.append(NotificationView(**detail, recipient=detail["recipient_role"], at=row.occurred_at))
        elif row.stage == Stage.REFERRAL:
            # Stages come in time order: the last update of a referral is its status.
            referrals[detail["referral_id"]] = ReferralView(**detail, at=row.occurred_at)
        elif row.stage == Stage.FOLLOW_UP:
            follow_up = FollowUpView(support_arrived=detail["support_arrived"], at=row.occurred_at)
        elif row.stage == Stage.TAKEN_UP:
            taken_up = taken_up or {"at": row.occurred_at, "summary": TAKEN_UP}
        elif row.stage == Stage.CLOSED:
            closed = {"at": row.occurred_at, "summary": CLOSED}
    return SignalStatus(
        id=signal.id,
        status=signal.status,
        received_at=signal.received_at,
        timeline=[TimelineEntry(stage=r.stage, at=r.occurred_at, summary=_summary(r.stage, r.detail)) for r in stages],
        screening=screening,
        escalation=escalation,
        matches=matches,
        no_match_reason=no_match_reason,
        notifications=notifications,
        referrals=list(referrals.values()),
        follow_up=follow_up,
        taken_up=taken_up,
        closed=closed,
    )
