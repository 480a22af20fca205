"""Deadlines: reminders to providers that did not answer in time, escalation to the
caregiver consultant after the second deadline, and the POM follow-up question.

``run_once`` claims what is due by the injected clock (``FOR UPDATE SKIP LOCKED``) and
writes the messages, and for a follow-up its state, in one transaction per kind; the
delivery worker sends them. Tests call it with a clock they move forward."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from services.notify import domain, repository
from services.notify.context import NotifyContext
from services.notify.follow_ups import ask_due
from services.notify.notifications import store
from services.notify.referrals import respond_by, scope_of
from shared.service import Runtime
from shared.worker import Periodic

BATCH = 100


@dataclass
class DeadlineRound:
    reminders: int = 0
    escalations: int = 0
    follow_ups: int = 0


async def remind(conn: asyncpg.Connection, ctx: NotifyContext) -> int:
    now = ctx.clock.now()
    due = await repository.claim_due_reminders(conn, now, BATCH)
    for referral in due:
        links = ctx.links.referral(referral["id"], now)
        await store(
            conn, ctx, scope_of(referral), domain.plan_reminder(referral, links, respond_by(ctx, referral["remind_at"]))
        )
        await repository.mark_deadline(conn, referral["id"], "reminded_at", now)
        ctx.metrics.reminders.inc()
    return len(due)


async def escalate(conn: asyncpg.Connection, ctx: NotifyContext) -> int:
    now = ctx.clock.now()
    due = await repository.claim_due_escalations(conn, now, BATCH)
    for referral in due:
        municipality = referral["signal"]["caregiver"]["municipality_code"]
        consultant = await repository.consultant_email(conn, municipality)
        await store(
            conn,
            ctx,
            scope_of(referral),
            domain.plan_escalation(referral, consultant, respond_by(ctx, referral["remind_at"])),
        )
        await repository.mark_deadline(conn, referral["id"], "escalated_at", now)
        ctx.metrics.escalations.inc()
    return len(due)


async def run_once(pool: asyncpg.Pool, ctx: NotifyContext) -> DeadlineRound:
    done = DeadlineRound()
    for step, field in ((remind, "reminders"), (escalate, "escalations"), (ask_due, "follow_ups")):
        async with pool.acquire() as conn, conn.transaction():
            setattr(done, field, await step(conn, ctx))
    return done


def deadline_worker(ctx: NotifyContext):
    def make(runtime: Runtime) -> Periodic:
        return Periodic("deadlines", ctx.settings.deadline_poll_seconds, lambda: run_once(runtime.pool, ctx))

    return make
