"""Matching's event handlers: each wraps the consumer's connection (inside the transaction
that holds the inbox row) in a unit of work and calls one use case of ``service``."""

from __future__ import annotations

import asyncpg

from services.matching import service
from services.matching.dependencies import MatchingContext
from services.matching.service import MatchingUnitOfWork
from shared.consumer import EventConsumer
from shared.contracts import CaregiverErased, Envelope, EventType, ReferralUpdated, SignalScreened, Topics, utcnow


def register_handlers(consumer: EventConsumer, ctx: MatchingContext) -> None:
    async def on_screened(conn: asyncpg.Connection, event: Envelope[SignalScreened]) -> None:
        await service.propose(MatchingUnitOfWork(conn), ctx.matcher, event.payload, event, utcnow())

    async def on_referral(conn: asyncpg.Connection, event: Envelope[ReferralUpdated]) -> None:
        await service.record_referral_update(MatchingUnitOfWork(conn), ctx.matcher, event.payload, event, utcnow())

    consumer.subscribe(
        {
            Topics.SCREENING: {EventType.SIGNAL_SCREENED: on_screened},
            Topics.NOTIFY: {EventType.REFERRAL_UPDATED: on_referral},
            Topics.SIGNALS: {EventType.CAREGIVER_ERASED: on_erased},
        }
    )


async def on_erased(conn: asyncpg.Connection, event: Envelope[CaregiverErased]) -> None:
    await service.erase(MatchingUnitOfWork(conn), event.payload)
