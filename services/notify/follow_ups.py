"""POM follow-up: about two weeks after the proposals the caregiver is asked whether the
support arrived; the answer is recorded once and announced as ``followup.recorded``
(screening measures the burden again when it did not)."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from services.notify import domain, repository
from services.notify.context import NotifyContext, NotifyUnitOfWork
from services.notify.notifications import Scope, store
from shared.contracts import EventType, FollowUpRecorded


async def ask_due(conn: asyncpg.Connection, ctx: NotifyContext, limit: int = 100) -> int:
    now = ctx.clock.now()
    due = await repository.claim_due_follow_ups(conn, now, limit)
    for follow_up in due:
        services = [dict(s) for s in await repository.live_services(conn, follow_up["case_id"])]
        planned = domain.plan_follow_up(follow_up, ctx.channels, ctx.links.follow_up(follow_up["id"], now), services)
        scope = Scope(
            follow_up["signal_id"], follow_up["case_id"], follow_up["correlation_id"], follow_up["subject_key"]
        )
        await store(conn, ctx, scope, planned)
        await repository.mark_follow_up_asked(conn, follow_up["id"], now)
        ctx.metrics.follow_ups.labels("asked").inc()
    return len(due)


async def record_answer(
    conn: asyncpg.Connection,
    ctx: NotifyContext,
    follow_up_id: UUID,
    support_arrived: bool,
) -> bool | None:
    """Record the caregiver's answer; the first answer counts. Returns the recorded answer,
    or None when there is no such follow-up (or it was cancelled)."""
    follow_up = await repository.follow_up(conn, follow_up_id, lock=True)
    if follow_up is None or follow_up["status"] == "cancelled":
        return None
    if follow_up["status"] == "answered":
        return follow_up["support_arrived"]
    now = ctx.clock.now()
    await repository.record_follow_up_answer(conn, follow_up_id, support_arrived, now)
    payload = FollowUpRecorded(
        signal_id=follow_up["signal_id"],
        case_id=follow_up["case_id"],
        support_arrived=support_arrived,
        recorded_at=now,
        municipality_code=((follow_up["signal"] or {}).get("caregiver") or {}).get("municipality_code"),
    )
    await NotifyUnitOfWork(conn).emit(
        EventType.FOLLOW_UP_RECORDED,
        payload,
        subject=follow_up["subject_key"],
        correlation_id=follow_up["correlation_id"],
    )
    ctx.metrics.follow_ups.labels("arrived" if support_arrived else "not_arrived").inc()
    return support_arrived
