"""Use cases of the notify service, called by its handlers and pages: proposals become
referrals and messages, an erasure ends the caregiver's referrals and blanks them, a
self-referral's address is asked to confirm, the consultant's hand-off and closing reach the
caregiver, and a provider answers a referral through its signed link.

Each takes a ``NotifyUnitOfWork``; handlers get theirs from the consumer (the inbox row's
transaction, so a redelivered event changes nothing, and the dedupe keys keep a re-sent
proposal from sending a message twice); pages and jobs open one. The referral, message and
follow-up modules (``referrals``, ``notifications``, ``follow_ups``) work on its repositories."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
from uuid import UUID, uuid4

from services.notify import domain, follow_ups, lifecycle, referrals
from services.notify.context import NotifyContext
from services.notify.domain import FollowUp, HistoryEntry, Referral
from services.notify.notifications import Scope, store, store_all
from services.notify.referrals import SYSTEM, announce, make
from services.notify.repository import NotifyUnitOfWork
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

__all__ = ["NotifyUnitOfWork"]  # the use cases' unit of work, defined with the repositories


async def propose(uow: NotifyUnitOfWork, ctx: NotifyContext, event: Envelope[MatchesProposed]) -> None:
    """Each proposal becomes a referral (unless the caregiver's consent blocks it) and the
    caregiver, referrer and providers are told; a follow-up question is scheduled."""
    p = event.payload
    signal = p.signal
    for match in p.matches:
        if match.consultant and match.contact_email:
            await uow.contacts.save_consultant(
                signal.caregiver.municipality_code, match.contact_email, match.service_name, "social_map"
            )
    made = {
        match.service_id: await make(uow, ctx, p, match, event.correlation_id, event.subject)
        for match in p.matches
        if domain.referral_blocker(signal, match) is None
    }
    planned = domain.plan_proposals(
        p,
        referrer=await uow.contacts.partner(signal.organisation_id),
        rematch=await uow.referrals.was_rejected_before(p.signal_id),
        channels=ctx.channels,
        referrals=made,
        social_map_url=ctx.settings.social_map_url,
    )
    scope = Scope(p.signal_id, p.case_id, event.correlation_id, event.subject, signal.organisation_id)
    await store_all(uow, ctx, scope, planned)
    if domain.should_follow_up(planned):
        now = ctx.clock.now()
        await uow.follow_ups.schedule(
            {
                "id": uuid4(),
                "case_id": p.case_id,
                "signal_id": p.signal_id,
                "correlation_id": event.correlation_id,
                "subject_key": event.subject,
                "signal": signal.model_dump(mode="json"),
                "due_at": now + timedelta(days=ctx.settings.follow_up_days),
                "created_at": now,
            }
        )


async def forget_caregiver(uow: NotifyUnitOfWork, ctx: NotifyContext, event: Envelope[CaregiverErased]) -> None:
    """Open referrals end, so matching frees their slots and nobody is reminded about a
    caregiver who is gone (the event carries no personal data); then the rows are blanked."""
    p = event.payload
    await uow.record_erasure(p)
    now = ctx.clock.now()
    for referral in await uow.referrals.open_of(p.signal_ids, p.case_ids):
        cancel = HistoryEntry(ReferralStatus.CANCELLED, None, None, SYSTEM, now)
        cancelled = await uow.referrals.set_status(referral.id, cancel)
        # Keyed by case, not by the pseudonym that is being erased (one case stays ordered).
        erased = replace(cancelled, signal=None, result=None, subject_key=str(referral.case_id))
        await announce(uow, ctx, erased, SYSTEM)
    await uow.erase(p.signal_ids, p.case_ids)
    await uow.forget_retained(p)


async def ask_confirmation(
    uow: NotifyUnitOfWork, ctx: NotifyContext, event: Envelope[SelfReferralConfirmationRequested]
) -> None:
    # The submission is not a signal yet: its id stands in for the signal and the case.
    p = event.payload
    scope = Scope(p.referral_id, p.referral_id, event.correlation_id, event.subject)
    await store(uow, ctx, scope, domain.plan_confirmation(p))


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
    ref = await make(uow, ctx, proposed, p.desk, event.correlation_id, event.subject)
    scope = Scope(p.signal_id, p.case_id, event.correlation_id, event.subject, p.signal.organisation_id)
    await store(uow, ctx, scope, domain.plan_handoff(proposed, ref, p.note))


async def case_closed(uow: NotifyUnitOfWork, ctx: NotifyContext, event: Envelope[CaseClosed]) -> None:
    """No follow-up question any more; the caregiver is told the case is closed, and why."""
    p = event.payload
    await uow.follow_ups.cancel(p.case_id)
    if p.signal is None:
        return
    language = p.signal.caregiver.preferred_language.value
    reason_text = labels(language if language in ("nl", "en") else "nl")["close_reason"][p.reason.value]
    scope = Scope(p.signal.signal_id, p.case_id, event.correlation_id, event.subject, p.signal.organisation_id)
    await store(uow, ctx, scope, domain.plan_closed(p.case_id, p.signal, p.reason.value, reason_text, ctx.channels))


async def retire_confirmations(uow: NotifyUnitOfWork, keep_hours: float) -> int:
    """Blank the self-referral confirmation messages older than ``keep_hours``; how many."""
    return await uow.notifications.blank_old_confirmations(keep_hours)


# --- what whoever holds a signed link does ------------------------------------------------------

# Whoever holds a valid signed link: the provider it was sent to, or the caregiver.
PROVIDER_LINK = Actor("provider", "signed-link")
CAREGIVER_LINK = Actor("caregiver", "signed-link")


def provider_actor(referral: Referral | None) -> Actor:
    return Actor(PROVIDER_LINK.role, PROVIDER_LINK.id, referral.service_id) if referral else PROVIDER_LINK


async def open_referral(uow: NotifyUnitOfWork, referral_id: UUID) -> Referral | None:
    """The referral a provider's link shows, read and logged (None: no such referral)."""
    referral = await uow.referrals.get(referral_id)
    outcome = "ok" if referral else "not_found"
    await uow.log_access(provider_actor(referral), Action.READ, "referral", referral_id, outcome=outcome)
    return referral


@dataclass(frozen=True)
class Answered:
    """What became of a provider's answer: the referral before (None: unknown) and after it,
    and whether it changed anything (``illegal``: the referral has another status already)."""

    before: Referral | None
    after: Referral | None = None
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
    current = await uow.referrals.get(referral_id)
    if current is None:
        return Answered(None)
    status = ReferralStatus.ACCEPTED if accept else ReferralStatus.REJECTED
    try:
        referral, change = await referrals.change_status(
            uow, ctx, referral_id, status, reason, note, current.answered_by
        )
    except lifecycle.IllegalTransition:
        return Answered(current, illegal=True)
    await uow.log_access(provider_actor(current), Action.UPDATE, "referral", referral_id)
    return Answered(current, referral, change.changed)


async def open_follow_up(uow: NotifyUnitOfWork, follow_up_id: UUID) -> FollowUp | None:
    """The follow-up question a caregiver's link shows, read and logged (None: none, or erased)."""
    follow_up = await uow.follow_ups.get(follow_up_id)
    found = follow_up is not None and follow_up.signal is not None
    await uow.log_access(CAREGIVER_LINK, Action.READ, "follow_up", follow_up_id, outcome="ok" if found else "not_found")
    return follow_up if found else None


@dataclass(frozen=True)
class FollowUpAnswer:
    """The caregiver's answer as recorded (the first one counts), in their language."""

    language: str
    recorded: bool


async def answer_follow_up(
    uow: NotifyUnitOfWork, ctx: NotifyContext, follow_up_id: UUID, support_arrived: bool
) -> FollowUpAnswer | None:
    """Record whether the support arrived; None when there is no such question (any more)."""
    follow_up = await uow.follow_ups.get(follow_up_id, lock=True)
    recorded = None
    if follow_up is not None and follow_up.signal is not None:
        recorded = await follow_ups.record_answer(uow, ctx, follow_up, support_arrived)
    outcome = "ok" if recorded is not None else "not_found"
    await uow.log_access(CAREGIVER_LINK, Action.UPDATE, "follow_up", follow_up_id, outcome=outcome)
    if follow_up is None or follow_up.signal is None or recorded is None:
        return None
    return FollowUpAnswer(follow_up.signal.caregiver.preferred_language.value, recorded)
