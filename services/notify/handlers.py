"""Consumers: proposals become referrals and messages; an erasure blanks the caregiver.

Each handler runs in the transaction of its inbox row, so a redelivered event changes
nothing, and the dedupe keys keep a re-sent proposal from sending a message twice."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import uuid4

import asyncpg

from services.notify import domain, repository
from services.notify.context import NotifyContext
from services.notify.notifications import Scope, store, store_all
from services.notify.referrals import SYSTEM, announce, make
from services.notify.templates import labels
from shared.contracts import (
    CaregiverErased,
    CaseClosed,
    CaseHandedOff,
    Envelope,
    EventType,
    MatchesProposed,
    ReferralStatus,
    SelfReferralConfirmationRequested,
    Topics,
)
from shared.outbox import forget_erased
from shared.tombstones import record_tombstone
from shared.service import Runtime


def make_handlers(ctx: NotifyContext) -> tuple[Any, Any]:
    async def on_matches(conn: asyncpg.Connection, event: Envelope[MatchesProposed]) -> None:
        p = event.payload
        signal = p.signal
        for match in p.matches:
            if match.consultant and match.contact_email:
                await repository.save_consultant(conn, signal.caregiver.municipality_code, match.contact_email,
                                                 match.service_name, "social_map")
        referrals = {
            match.service_id: await make(conn, ctx, p, match, event.correlation_id, event.subject)
            for match in p.matches if domain.referral_blocker(signal, match) is None
        }
        planned = domain.plan_proposals(
            p, referrer=await repository.partner(conn, signal.organisation_id),
            rematch=await repository.was_rejected_before(conn, p.signal_id),
            channels=ctx.channels, referrals=referrals, social_map_url=ctx.settings.social_map_url,
        )
        scope = Scope(p.signal_id, p.case_id, event.correlation_id, event.subject, signal.organisation_id)
        await store_all(conn, ctx, scope, planned)
        if domain.should_follow_up(planned):
            now = ctx.clock.now()
            await repository.schedule_follow_up(
                conn, id=uuid4(), case_id=p.case_id, signal_id=p.signal_id, correlation_id=event.correlation_id,
                subject_key=event.subject, signal=signal.model_dump(mode="json"),
                due_at=now + timedelta(days=ctx.settings.follow_up_days), created_at=now)

    async def on_erased(conn: asyncpg.Connection, event: Envelope[CaregiverErased]) -> None:
        p = event.payload
        await record_tombstone(conn, p.caregiver_pseudonym, p.signal_ids, p.case_ids)
        # Open referrals end, so matching frees their slots and nobody is reminded about a
        # caregiver who is gone; the event carries no personal data.
        now = ctx.clock.now()
        for referral in await repository.open_referrals(conn, p.signal_ids, p.case_ids):
            cancelled = await repository.set_referral_status(
                conn, referral["id"], ReferralStatus.CANCELLED.value, None, None, SYSTEM, now)
            # Keyed by case, not by the pseudonym that is being erased (one case stays ordered).
            await announce(conn, ctx, {**cancelled, "signal": None, "result": None,
                                       "subject_key": str(referral["case_id"])}, SYSTEM)
        await repository.erase(conn, p.signal_ids, p.case_ids)
        await forget_erased(conn, p)

    async def on_confirmation_requested(
        conn: asyncpg.Connection, event: Envelope[SelfReferralConfirmationRequested],
    ) -> None:
        # The submission is not a signal yet: its id stands in for the signal and the case.
        p = event.payload
        scope = Scope(p.referral_id, p.referral_id, event.correlation_id, event.subject)
        await store(conn, ctx, scope, domain.plan_confirmation(p))

    return on_matches, on_erased, on_confirmation_requested


def make_casework_handlers(ctx: NotifyContext) -> tuple[Any, Any]:
    """The caregiver consultant's hand-off to the Wmo desk (a referral like any other) and
    the caregiver's message when the consultant closes the case."""

    async def on_handed_off(conn: asyncpg.Connection, event: Envelope[CaseHandedOff]) -> None:
        p = event.payload
        proposed = MatchesProposed(signal_id=p.signal_id, case_id=p.case_id, proposed_at=p.handed_off_at,
                                   matches=[p.desk], result=p.result, signal=p.signal)
        ref = await make(conn, ctx, proposed, p.desk, event.correlation_id, event.subject)
        scope = Scope(p.signal_id, p.case_id, event.correlation_id, event.subject, p.signal.organisation_id)
        await store(conn, ctx, scope, domain.plan_handoff(proposed, ref, p.note))

    async def on_closed(conn: asyncpg.Connection, event: Envelope[CaseClosed]) -> None:
        p = event.payload
        await repository.cancel_follow_up(conn, p.case_id)
        if p.signal is None:
            return
        language = p.signal.caregiver.preferred_language.value
        reason_text = labels(language if language in ("nl", "en") else "nl")["close_reason"][p.reason.value]
        scope = Scope(p.signal.signal_id, p.case_id, event.correlation_id, event.subject, p.signal.organisation_id)
        await store(conn, ctx, scope, domain.plan_closed(p.case_id, p.signal, p.reason.value, reason_text,
                                                          ctx.channels))

    return on_handed_off, on_closed


def register_handlers(runtime: Runtime, ctx: NotifyContext) -> None:
    on_matches, on_erased, on_confirmation_requested = make_handlers(ctx)
    on_handed_off, on_closed = make_casework_handlers(ctx)
    runtime.consumer.subscribe({
        Topics.MATCHING: {EventType.MATCHES_PROPOSED: on_matches},
        Topics.SIGNALS: {
            EventType.CAREGIVER_ERASED: on_erased,
            EventType.SELF_REFERRAL_CONFIRMATION_REQUESTED: on_confirmation_requested,
        },
        Topics.CASEWORK: {
            EventType.CASE_HANDED_OFF: on_handed_off,
            EventType.CASE_CLOSED: on_closed,
        },
    })
