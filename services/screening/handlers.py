"""Screening's event handlers: each wraps the consumer's connection (inside the transaction
that holds the inbox row) in a unit of work and calls one use case of ``service``."""

from __future__ import annotations

import asyncpg

from services.screening import service
from services.screening.dependencies import ScreeningContext
from services.screening.service import ScreeningUnitOfWork
from shared.consumer import EventConsumer, Handler
from shared.contracts import (
    CaregiverErased,
    CaseAnswersRecorded,
    CaseClosed,
    Envelope,
    EventType,
    FollowUpRecorded,
    SignalReceived,
    Topics,
    utcnow,
)


def register_handlers(consumer: EventConsumer, ctx: ScreeningContext) -> None:
    on_signal, on_answers = _screening_handlers(ctx)
    consumer.subscribe(
        {
            Topics.SIGNALS: {EventType.SIGNAL_RECEIVED: on_signal, EventType.CAREGIVER_ERASED: on_erased},
            Topics.NOTIFY: {EventType.FOLLOW_UP_RECORDED: on_follow_up},
            Topics.CASEWORK: {EventType.CASE_ANSWERS_RECORDED: on_answers, EventType.CASE_CLOSED: on_closed},
        }
    )


def _screening_handlers(ctx: ScreeningContext) -> tuple[Handler, Handler]:
    async def on_signal(conn: asyncpg.Connection, event: Envelope[SignalReceived]) -> None:
        await service.screen_signal(ScreeningUnitOfWork(conn), ctx.screener, event.payload, event, utcnow())

    async def on_answers(conn: asyncpg.Connection, event: Envelope[CaseAnswersRecorded]) -> None:
        # The consultant's recorded answers arrive as a signal of their own: screened like any.
        await service.screen_signal(ScreeningUnitOfWork(conn), ctx.screener, event.payload.signal, event, utcnow())

    return on_signal, on_answers


async def on_closed(conn: asyncpg.Connection, event: Envelope[CaseClosed]) -> None:
    await service.close_case(ScreeningUnitOfWork(conn), event.payload)


async def on_follow_up(conn: asyncpg.Connection, event: Envelope[FollowUpRecorded]) -> None:
    await service.record_follow_up(
        ScreeningUnitOfWork(conn), event.payload.case_id, event.payload.support_arrived, utcnow()
    )


async def on_erased(conn: asyncpg.Connection, event: Envelope[CaregiverErased]) -> None:
    await service.erase(ScreeningUnitOfWork(conn), event.payload)
