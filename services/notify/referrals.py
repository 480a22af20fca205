"""Provider referrals: made from proposals, moved through their lifecycle by the provider
(API or signed link) or by the system, and announced as ``referral.updated``.

Every status change is one transaction: the referral, its history, the event (matching
releases the slot and re-matches on a rejection; signals shows it in the timeline) and the
referrer's message."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

from services.notify import domain, lifecycle
from services.notify.context import NotifyContext
from services.notify.domain import HistoryEntry, Referral
from services.notify.notifications import Scope, store
from services.notify.repository import NotifyUnitOfWork
from services.notify.workdays import add_working_days
from shared.contracts import (
    EventType,
    MatchesProposed,
    ProposedMatch,
    ReferralStatus,
    ReferralUpdated,
    RejectionReason,
)

SYSTEM = "system"


def respond_by(ctx: NotifyContext, remind_at: datetime | None) -> str:
    return remind_at.astimezone(ZoneInfo(ctx.settings.timezone)).strftime("%d-%m-%Y") if remind_at else ""


def scope_of(referral: Referral) -> Scope:
    return Scope(
        referral.signal_id, referral.case_id, referral.correlation_id, referral.subject_key, referral.organisation_id
    )


async def make(
    uow: NotifyUnitOfWork,
    ctx: NotifyContext,
    event: MatchesProposed,
    match: ProposedMatch,
    correlation_id: str,
    subject_key: str,
) -> domain.ReferralRef:
    """The referral for one proposal (or the case's open one to the same service)."""
    now = ctx.clock.now()
    settings = ctx.settings
    remind_at = add_working_days(now, settings.response_working_days, settings.timezone)
    referral_id, created = await uow.referrals.add(
        {
            "id": uuid4(),
            "case_id": event.case_id,
            "signal_id": event.signal_id,
            "organisation_id": event.signal.organisation_id,
            "correlation_id": correlation_id,
            "subject_key": subject_key,
            **match.model_dump(include=_FROM_MATCH),
            "signal": event.signal.model_dump(mode="json"),
            "result": event.result.model_dump(mode="json"),
            "remind_at": remind_at,
            # The consultant is where escalations end: nobody to escalate a consultant's referral to.
            "escalate_at": None
            if match.consultant
            else add_working_days(now, settings.escalation_working_days, settings.timezone),
            "created_at": now,
            "updated_at": now,
        }
    )
    if created:
        await uow.referrals.add_history(referral_id, HistoryEntry(ReferralStatus.REQUESTED, None, None, SYSTEM, now))
    return domain.ReferralRef(referral_id, ctx.links.referral(referral_id, now), respond_by(ctx, remind_at))


# What a referral keeps of the proposed match, column for field.
_FROM_MATCH = {"service_id", "service_name", "organization_name", "contact_email", "consultant", "reservation_id"}


async def announce(uow: NotifyUnitOfWork, ctx: NotifyContext, referral: Referral, updated_by: str) -> None:
    """Emit referral.updated with what matching needs to release the slot and re-match."""
    payload = ReferralUpdated(
        **vars(referral),  # by field name; the event takes what it has a field for
        referral_id=referral.id,
        updated_by=updated_by,
        excluded_service_ids=await uow.referrals.rejected_service_ids(referral.case_id),
    )
    await uow.emit(
        EventType.REFERRAL_UPDATED, payload, subject=referral.subject_key, correlation_id=referral.correlation_id
    )
    ctx.metrics.referral_updates.labels(payload.status.value, updated_by).inc()


async def change_status(
    uow: NotifyUnitOfWork,
    ctx: NotifyContext,
    referral_id: UUID,
    status: ReferralStatus,
    reason_code: RejectionReason | None,
    note: str | None,
    updated_by: str,
) -> tuple[Referral, lifecycle.Change]:
    """Move a referral on; raises LookupError, lifecycle.InvalidUpdate or IllegalTransition."""
    current = await uow.referrals.get(referral_id, lock=True)
    if current is None:
        raise LookupError(f"no referral {referral_id}")
    change = lifecycle.transition(current.status, status, reason_code)
    if not change.changed:
        return current, change
    reason = reason_code.value if reason_code else None
    updated = await uow.referrals.set_status(
        referral_id, HistoryEntry(status, reason, note, updated_by, ctx.clock.now())
    )
    await announce(uow, ctx, updated, updated_by)
    referrer = await uow.contacts.partner(updated.organisation_id)
    await store(uow, ctx, scope_of(updated), domain.plan_referral_update(updated, referrer))
    return updated, change


def view(referral: Referral, history: list[HistoryEntry]) -> dict[str, Any]:
    """A referral as its provider sees it: no more than the referral message gave them."""
    signal = referral.signal
    share = bool(signal and signal.consent.share_with_providers)
    return vars(referral) | {
        "respond_by": referral.remind_at,
        "referrer": signal.organisation_name if signal else None,
        "caregiver": domain.caregiver_details(signal, referral.result, share) if signal else None,
        "history": [vars(entry) for entry in history],
    }
