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

import asyncpg

from services.notify import domain, lifecycle, repository
from services.notify.context import NotifyContext, NotifyUnitOfWork
from services.notify.notifications import Scope, store
from services.notify.workdays import add_working_days
from shared.contracts import (
    EventType,
    MatchesProposed,
    ProposedMatch,
    ReferralStatus,
    ReferralUpdated,
    RejectionReason,
    ScreeningResult,
    SignalReceived,
)

SYSTEM = "system"


def respond_by(ctx: NotifyContext, remind_at: datetime) -> str:
    return remind_at.astimezone(ZoneInfo(ctx.settings.timezone)).strftime("%d-%m-%Y")


def scope_of(referral: Any) -> Scope:
    return Scope(
        referral["signal_id"],
        referral["case_id"],
        referral["correlation_id"],
        referral["subject_key"],
        referral["organisation_id"],
    )


async def make(
    conn: asyncpg.Connection,
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
    referral_id, created = await repository.insert_referral(
        conn,
        id=uuid4(),
        case_id=event.case_id,
        signal_id=event.signal_id,
        organisation_id=event.signal.organisation_id,
        correlation_id=correlation_id,
        subject_key=subject_key,
        service_id=match.service_id,
        service_name=match.service_name,
        organization_name=match.organization_name,
        contact_email=match.contact_email,
        consultant=match.consultant,
        reservation_id=match.reservation_id,
        signal=event.signal.model_dump(mode="json"),
        result=event.result.model_dump(mode="json"),
        remind_at=remind_at,
        # The consultant is where escalations end: nobody to escalate a consultant's referral to.
        escalate_at=None
        if match.consultant
        else add_working_days(now, settings.escalation_working_days, settings.timezone),
        created_at=now,
        updated_at=now,
    )
    if created:
        await repository.add_history(conn, referral_id, ReferralStatus.REQUESTED.value, SYSTEM, now)
    return domain.ReferralRef(referral_id, ctx.links.referral(referral_id, now), respond_by(ctx, remind_at))


async def announce(conn: asyncpg.Connection, ctx: NotifyContext, referral: Any, updated_by: str) -> None:
    """Emit referral.updated with what matching needs to release the slot and re-match."""
    signal = SignalReceived.model_validate(referral["signal"]) if referral["signal"] else None
    payload = ReferralUpdated(
        signal_id=referral["signal_id"],
        case_id=referral["case_id"],
        referral_id=referral["id"],
        service_id=referral["service_id"],
        service_name=referral["service_name"],
        status=ReferralStatus(referral["status"]),
        reason_code=RejectionReason(referral["reason_code"]) if referral["reason_code"] else None,
        note=referral["note"],
        updated_at=referral["updated_at"],
        updated_by=updated_by,
        reservation_id=referral["reservation_id"],
        excluded_service_ids=await repository.rejected_service_ids(conn, referral["case_id"]),
        signal=signal,
        result=ScreeningResult.model_validate(referral["result"]) if referral["result"] else None,
    )
    await NotifyUnitOfWork(conn).emit(
        EventType.REFERRAL_UPDATED, payload, subject=referral["subject_key"], correlation_id=referral["correlation_id"]
    )
    ctx.metrics.referral_updates.labels(payload.status.value, updated_by).inc()


async def change_status(
    conn: asyncpg.Connection,
    ctx: NotifyContext,
    referral_id: UUID,
    status: ReferralStatus,
    reason_code: RejectionReason | None,
    note: str | None,
    updated_by: str,
) -> tuple[Any, lifecycle.Change]:
    """Move a referral on; raises LookupError, lifecycle.InvalidUpdate or IllegalTransition."""
    current = await repository.referral(conn, referral_id, lock=True)
    if current is None:
        raise LookupError(f"no referral {referral_id}")
    change = lifecycle.transition(ReferralStatus(current["status"]), status, reason_code)
    if not change.changed:
        return current, change
    updated = await repository.set_referral_status(
        conn,
        referral_id,
        status.value,
        reason_code.value if reason_code else None,
        note,
        updated_by,
        ctx.clock.now(),
    )
    await announce(conn, ctx, updated, updated_by)
    signal = SignalReceived.model_validate(updated["signal"]) if updated["signal"] else None
    referrer = await repository.partner(conn, updated["organisation_id"])
    await store(conn, ctx, scope_of(updated), domain.plan_referral_update(updated, signal, referrer))
    return updated, change


def view(referral: Any, history: list[Any]) -> dict[str, Any]:
    """A referral as its provider sees it: no more than the referral message gave them."""
    signal = SignalReceived.model_validate(referral["signal"]) if referral["signal"] else None
    share = bool(signal and signal.consent.share_with_providers)
    result = ScreeningResult.model_validate(referral["result"]) if referral["result"] else None
    return {
        "id": referral["id"],
        "status": referral["status"],
        "reason_code": referral["reason_code"],
        "note": referral["note"],
        "service_id": referral["service_id"],
        "service_name": referral["service_name"],
        "consultant": referral["consultant"],
        "created_at": referral["created_at"],
        "updated_at": referral["updated_at"],
        "respond_by": referral["remind_at"],
        "reminded_at": referral["reminded_at"],
        "escalated_at": referral["escalated_at"],
        "referrer": signal.organisation_name if signal else None,
        "caregiver": domain.caregiver_details(signal, result, share) if signal else None,
        "history": [dict(h) for h in history],
    }
