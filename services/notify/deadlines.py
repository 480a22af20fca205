"""Deadlines: reminders to providers that did not answer in time, escalation to the
caregiver consultant after the second deadline, and the POM follow-up question.

``run_once`` claims what is due by the injected clock (``FOR UPDATE SKIP LOCKED``) and
writes the messages, and for a follow-up its state, in one transaction per kind; the
delivery worker sends them. Tests call it with a clock they move forward."""

from __future__ import annotations

from dataclasses import dataclass

from services.notify import domain
from services.notify.context import NotifyContext
from services.notify.follow_ups import ask_due
from services.notify.notifications import store
from services.notify.referrals import respond_by, scope_of
from services.notify.repository import NotifyUnitOfWork
from shared.worker import Periodic

BATCH = 100


@dataclass
class DeadlineRound:
    reminders: int = 0
    escalations: int = 0
    follow_ups: int = 0


async def remind(uow: NotifyUnitOfWork, ctx: NotifyContext) -> int:
    now = ctx.clock.now()
    due = await uow.referrals.claim_due_reminders(now, BATCH)
    for referral in due:
        planned = domain.plan_reminder(
            referral, ctx.links.referral(referral.id, now), respond_by(ctx, referral.remind_at)
        )
        await store(uow, ctx, scope_of(referral), planned)
        await uow.referrals.mark_deadline(referral.id, "reminded_at", now)
        ctx.metrics.reminders.inc()
    return len(due)


async def escalate(uow: NotifyUnitOfWork, ctx: NotifyContext) -> int:
    now = ctx.clock.now()
    due = await uow.referrals.claim_due_escalations(now, BATCH)
    for referral in due:
        municipality = referral.signal.caregiver.municipality_code if referral.signal else ""
        consultant = await uow.contacts.consultant_email(municipality)
        planned = domain.plan_escalation(referral, consultant, respond_by(ctx, referral.remind_at))
        await store(uow, ctx, scope_of(referral), planned)
        await uow.referrals.mark_deadline(referral.id, "escalated_at", now)
        ctx.metrics.escalations.inc()
    return len(due)


async def run_once(ctx: NotifyContext) -> DeadlineRound:
    done = DeadlineRound()
    for step, field in ((remind, "reminders"), (escalate, "escalations"), (ask_due, "follow_ups")):
        async with ctx.begin() as uow:
            setattr(done, field, await step(uow, ctx))
    return done


def deadline_worker(ctx: NotifyContext) -> Periodic:
    return Periodic("deadlines", ctx.settings.deadline_poll_seconds, lambda: run_once(ctx))
