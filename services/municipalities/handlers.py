"""Consumers: each pipeline event becomes at most one anonymous record (``records``) that
waits for release, kept in the inbox's transaction by ``service.keep_record``;
``caregiver.erased`` drops the person's waiting records (``service.erase``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg

from services.municipalities import records, service
from services.municipalities.domain import Record
from services.municipalities.service import MunicipalitiesUnitOfWork
from shared.consumer import EventConsumer, Handler
from shared.contracts import CaregiverErased, Envelope, EventType, Topics


def register_handlers(consumer: EventConsumer) -> None:
    consumer.subscribe(
        {
            Topics.SIGNALS: {EventType.CAREGIVER_ERASED: on_erased},
            Topics.SCREENING: {EventType.SIGNAL_SCREENED: keeping(records.from_screened)},
            Topics.MATCHING: {EventType.MATCHES_PROPOSED: keeping(records.from_matches)},
            Topics.NOTIFY: {
                EventType.REFERRAL_UPDATED: keeping(records.from_referral),
                EventType.FOLLOW_UP_RECORDED: keeping(records.from_follow_up),
            },
        }
    )


def keeping(derive: Callable[[Any, str, datetime], Record | None]) -> Handler:
    """The handler that keeps the record ``derive`` makes of an event."""

    async def handle(conn: asyncpg.Connection, event: Envelope[Any]) -> None:
        record = derive(event.payload, event.subject, datetime.now(UTC))
        await service.keep_record(MunicipalitiesUnitOfWork(conn), record)

    return handle


async def on_erased(conn: asyncpg.Connection, event: Envelope[CaregiverErased]) -> None:
    await service.erase(MunicipalitiesUnitOfWork(conn), event.payload)
