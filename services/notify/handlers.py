"""Consumers: each event to its use case in ``service`` (proposals become referrals and
messages; an erasure blanks the caregiver), in a unit of work on the consumer's connection,
inside the transaction that holds the event's inbox row."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from services.notify import service
from services.notify.context import NotifyContext
from services.notify.repository import NotifyUnitOfWork
from shared.consumer import EventConsumer
from shared.contracts import Envelope, EventType, Topics

UseCase = Callable[[NotifyUnitOfWork, NotifyContext, Envelope[Any]], Awaitable[None]]

# Each event notify consumes, by topic, and the use case it goes to.
USE_CASES: dict[str, dict[str, UseCase]] = {
    Topics.MATCHING: {EventType.MATCHES_PROPOSED: service.propose},
    Topics.SIGNALS: {
        EventType.CAREGIVER_ERASED: service.forget_caregiver,
        EventType.SELF_REFERRAL_CONFIRMATION_REQUESTED: service.ask_confirmation,
    },
    Topics.CASEWORK: {EventType.CASE_HANDED_OFF: service.hand_off, EventType.CASE_CLOSED: service.case_closed},
}


def register_handlers(consumer: EventConsumer, ctx: NotifyContext) -> None:
    def handler(use_case: UseCase) -> Callable[[asyncpg.Connection, Envelope[Any]], Awaitable[None]]:
        async def handle(conn: asyncpg.Connection, event: Envelope[Any]) -> None:
            await use_case(NotifyUnitOfWork(conn), ctx, event)

        return handle

    consumer.subscribe(
        {topic: {kind: handler(use) for kind, use in kinds.items()} for topic, kinds in USE_CASES.items()}
    )
