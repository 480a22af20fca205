"""Use cases of the notify service, called by its handlers and pages: proposals become
referrals and messages, an erasure ends the caregiver's referrals and blanks them, a
self-referral's address is asked to confirm, the consultant's hand-off and closing reach the
caregiver, and a provider answers a referral through its signed link.

Each takes a ``NotifyUnitOfWork``; handlers get theirs from the consumer (the inbox row's
transaction, so a redelivered event changes nothing, and the dedupe keys keep a re-sent
proposal from sending a message twice); pages open one. The referral, message and follow-up
modules (``referrals``, ``notifications``, ``follow_ups``) work on its connection."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

from services.notify import domain, lifecycle, referrals, repository

# Notify's handlers and routes import the unit of work from here, like every service's.
from services.notify.context import NotifyContext
from services.notify.context import NotifyUnitOfWork as NotifyUnitOfWork
from services.notify.notifications import Scope, store, store_all
from services.notify.referrals import SYSTEM, announce, make
from services.notify.templates import labels
from shared.access_log import Action, Actor
from shared.contracts import (
    CaregiverErased,
    CaseClosed,
    CaseHandedOff,
    Envelope,
    MatchesProposed,
    ReferralStatus,
    RejectionReason,
    SelfReferralConfirmationRequested,
)


async def propose(uow: NotifyUnitOfWork, ctx: NotifyContext, event: Envelope[MatchesProposed]) -> None:
    """Each proposal becomes a referral (unless the caregiver's consent blocks it) and the
    caregiver, referrer and providers are told; a follow-up question is scheduled."""
    p, conn = event.payload, uow.conn
    signal = p.signal
    for match in p.matches:
        if match.consultant and match.contact_email:
            await repository.save_consultant(
                conn, signal.caregiver.municipality_code, match.contact_email, match.service_name, "social_map"
            )
    made = {
        match.service_id: await make(conn, ctx, p, match, event.correlation_id, event.subject)
        for match in p.matches
        if domain.referral_blocker(signal, match) is None
    }
    planned = domain.plan_proposals(
        p,
        referrer=await repository.partner(conn, signal.organisation_id),
        rematch=await repository.was_rejected_before(conn, p.signal_id),
        channels=ctx.channels,
        referrals=made,
        social_map_url=ctx.settings.social_map_url,
    )
    scope = Scope(p.signal_id, p.case_id, event.correlation_id, event.subject, signal.organisation_id)
    await store_all(conn, ctx, scope, planned)
    if domain.should_follow_up(planned):
        now = ctx.clock.now()
        await repository.schedule_follow_up(
            conn,
            id=uuid4(),
            case_id=p.case_id,
            signal_id=p.signal_id,
            correlation_id=event.correlation_id,
            subject_key=event.subject,
            signal=signal.model_dump(mode="json"),
            due_at=now + timedelta(days=ctx.settings.follow_up_days),
            created_at=now,
        )


async def forget_caregiver(uow: NotifyUnitOfWork, ctx: NotifyContext, p: CaregiverErased) -> None:
    """Open referrals end, so matching frees their slots and nobody is reminded about a
    caregiver who is gone (the event carries no personal data); then the rows are blanked."""
    await uow.record_erasure(p)
    now = ctx.clock.now()
    for referral in await repository.open_referrals(uow.conn, p.signal_ids, p.case_ids):
        cancelled = await repository.set_referral_status(
            uow.conn, referral["id"], ReferralStatus.CANCELLED.value, None, None, SYSTEM, now
        )
        # Keyed by case, not by the pseudonym that is being erased (one case stays ordered).
        await announce(
            uow.conn,
            ctx,
            {**cancelled, "signal": None, "result": None, "subject_key": str(referral["case_id"])},
            SYSTEM,
        )
    await repository.erase(uow.conn, p.signal_ids, p.case_ids)
    await uow.forget_retained(p)


async def ask_confirmation(
    uow: NotifyUnitOfWork, ctx: NotifyContext, event: Envelope[SelfReferralConfirmationRequested]
) -> None:
    # The submission is not a signal yet: its id stands in for the signal and the case.
    p = event.payload
    scope = Scope(p.referral_id, p.referral_id, event.correlation_id, event.subject)
    await store(uow.conn, ctx, scope, domain.plan_confirmation(p))


async def hand_off(uow: NotifyUnitOfWork, ctx: NotifyContext, event: Envelope[CaseHandedOff]) -> None:
    """The caregiver consultant's hand-off to the Wmo desk: a referral like any other."""
    p = event.payload
    proposed = MatchesProposed(
        signal_id=p.signal_id,
        case_id=p.case_id,
        proposed_at=p.handed_off_at,
        matches=[p.desk],
        result=p.result,
        signal=p.signal,
    )
    ref = await make(uow.conn, ctx, proposed, p.desk, event.correlation_id, event.subject)
    scope = Scope(p.signal_id, p.case_id, event.correlation_id, event.subject, p.signal.organisation_id)
    await store(uow.conn, ctx, scope, domain.plan_handoff(proposed, ref, p.note))


async def case_closed(uow: NotifyUnitOfWork, ctx: NotifyContext, event: Envelope[CaseClosed]) -> None:
    """No follow-up question any more; the caregiver is told the case is closed, and why."""
    p = event.payload
    await repository.cancel_follow_up(uow.conn, p.case_id)
    if p.signal is None:
        return
    language = p.signal.caregiver.preferred_language.value
    reason_text = labels(language if language in ("nl", "en") else "nl")["close_reason"][p.reason.value]
    scope = Scope(p.signal.signal_id, p.case_id, event.correlation_id, event.subject, p.signal.organisation_id)
    await store(
        uow.conn, ctx, scope, domain.plan_closed(p.case_id, p.signal, p.reason.value, reason_text, ctx.channels)
    )


# --- a provider's answer through its signed link ----------------------------------------------

# Whoever holds a valid signed link: the provider it was sent to, or the caregiver.
PROVIDER_LINK = Actor("provider", "signed-link")
CAREGIVER_LINK = Actor("caregiver", "signed-link")


def provider_actor(referral: Any) -> Actor:
    return Actor(PROVIDER_LINK.role, PROVIDER_LINK.id, referral["service_id"]) if referral else PROVIDER_LINK


@dataclass(frozen=True)
class Answered:
    """What became of a provider's answer: the referral before (None: unknown) and after it,
    and whether it changed anything (``illegal``: the referral has another status already)."""

    before: Any
    after: Any = None
    changed: bool = False
    illegal: bool = False


async def answer_referral(
    uow: NotifyUnitOfWork,
    ctx: NotifyContext,
    referral_id: UUID,
    accept: bool,
    reason: RejectionReason | None,
    note: str | None,
) -> Answered:
    current = await repository.referral(uow.conn, referral_id)
    if current is None:
        return Answered(None)
    status = ReferralStatus.ACCEPTED if accept else ReferralStatus.REJECTED
    by = "consultant" if current["consultant"] else "provider"
    try:
        referral, change = await referrals.change_status(uow.conn, ctx, referral_id, status, reason, note, by)
    except lifecycle.IllegalTransition:
        return Answered(current, illegal=True)
    await uow.log_access(provider_actor(current), Action.UPDATE, "referral", referral_id)
    return Answered(current, referral, change.changed)
