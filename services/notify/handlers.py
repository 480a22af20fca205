"""Consumers: each event to its use case in ``service`` (proposals become referrals and
messages; an erasure blanks the caregiver), in the transaction of its inbox row."""

from __future__ import annotations

import asyncpg

from services.notify import service
from services.notify.context import NotifyContext
from services.notify.service import NotifyUnitOfWork
from shared.contracts import (
    CaregiverErased,
    CaseClosed,
    CaseHandedOff,
    Envelope,
    EventType,
    MatchesProposed,
    SelfReferralConfirmationRequested,
    Topics,
)
from shared.service import Runtime


class _Handlers:
    """Each event's use case, in the consumer's transaction."""

    def __init__(self, ctx: NotifyContext) -> None:
        self.ctx = ctx

    async def on_matches(self, conn: asyncpg.Connection, event: Envelope[MatchesProposed]) -> None:
        await service.propose(NotifyUnitOfWork(conn), self.ctx, event)

    async def on_erased(self, conn: asyncpg.Connection, event: Envelope[CaregiverErased]) -> None:
        await service.forget_caregiver(NotifyUnitOfWork(conn), self.ctx, event.payload)

    async def on_confirmation_requested(
        self,
        conn: asyncpg.Connection,
        event: Envelope[SelfReferralConfirmationRequested],
    ) -> None:
        await service.ask_confirmation(NotifyUnitOfWork(conn), self.ctx, event)

    async def on_handed_off(self, conn: asyncpg.Connection, event: Envelope[CaseHandedOff]) -> None:
        await service.hand_off(NotifyUnitOfWork(conn), self.ctx, event)

    async def on_closed(self, conn: asyncpg.Connection, event: Envelope[CaseClosed]) -> None:
        await service.case_closed(NotifyUnitOfWork(conn), self.ctx, event)


def register_handlers(runtime: Runtime, ctx: NotifyContext) -> None:
    h = _Handlers(ctx)
    on_matches, on_erased, on_confirmation_requested = h.on_matches, h.on_erased, h.on_confirmation_requested
    on_handed_off, on_closed = h.on_handed_off, h.on_closed
    runtime.consumer.subscribe(
        {
            Topics.MATCHING: {EventType.MATCHES_PROPOSED: on_matches},
            Topics.SIGNALS: {
                EventType.CAREGIVER_ERASED: on_erased,
                EventType.SELF_REFERRAL_CONFIRMATION_REQUESTED: on_confirmation_requested,
            },
            Topics.CASEWORK: {
                EventType.CASE_HANDED_OFF: on_handed_off,
                EventType.CASE_CLOSED: on_closed,
            },
        }
    )
