"""POM follow-up: about two weeks after the proposals the caregiver is asked whether the
support arrived; the answer is recorded once and announced as ``followup.recorded``
(screening measures the burden again when it did not)."""

from __future__ import annotations

from services.notify import domain
from services.notify.context import NotifyContext
from services.notify.domain import FollowUp
from services.notify.notifications import Scope, store
from services.notify.repository import NotifyUnitOfWork
from shared.contracts import EventType, FollowUpRecorded


async def ask_due(uow: NotifyUnitOfWork, ctx: NotifyContext, limit: int = 100) -> int:
    now = ctx.clock.now()
    due = await uow.follow_ups.claim_due(now, limit)
    for follow_up in due:
        services = await uow.referrals.live(follow_up.case_id)
        planned = domain.plan_follow_up(follow_up, ctx.channels, ctx.links.follow_up(follow_up.id, now), services)
        scope = Scope(follow_up.signal_id, follow_up.case_id, follow_up.correlation_id, follow_up.subject_key)
        await store(uow, ctx, scope, planned)
        await uow.follow_ups.mark_asked(follow_up.id, now)
        ctx.metrics.follow_ups.labels("asked").inc()
    return len(due)


async def record_answer(
    uow: NotifyUnitOfWork,
    ctx: NotifyContext,
    follow_up: FollowUp,
    support_arrived: bool,
) -> bool | None:
    """Record the caregiver's answer to ``follow_up`` (locked); the first answer counts.
    Returns the recorded answer, or None when the follow-up was cancelled."""
    if follow_up.status == "cancelled":
        return None
    if follow_up.status == "answered":
        return follow_up.support_arrived
    now = ctx.clock.now()
    await uow.follow_ups.record_answer(follow_up.id, support_arrived, now)
    payload = FollowUpRecorded(
        signal_id=follow_up.signal_id,
        case_id=follow_up.case_id,
        support_arrived=support_arrived,
        recorded_at=now,
        municipality_code=follow_up.signal.caregiver.municipality_code if follow_up.signal else None,
    )
    await uow.emit(
        EventType.FOLLOW_UP_RECORDED, payload, subject=follow_up.subject_key, correlation_id=follow_up.correlation_id
    )
    ctx.metrics.follow_ups.labels("arrived" if support_arrived else "not_arrived").inc()
    return support_arrived
