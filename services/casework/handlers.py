"""Consumers: every pipeline event about a case updates the consultant's view of it, in the
inbox's transaction; when the case then needs a person, the referrers are told a person has
it (``service.take_up``). ``caregiver.erased`` forgets the person or the withdrawn signals."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from services.casework import service
from services.casework.config import CaseworkSettings
from services.casework.dependencies import CaseworkContext
from services.casework.service import CaseworkUnitOfWork
from shared.consumer import EventConsumer, Handler
from shared.contracts import (
    CaregiverErased,
    Envelope,
    EventType,
    Topics,
)

# A use case about one case: (unit of work, settings, the event's subject, its payload).
CaseUseCase = Callable[[CaseworkUnitOfWork, CaseworkSettings, str, Any], Awaitable[None]]


# Topic → event type → its use case about one case.
CASE_EVENTS: dict[str, dict[str, CaseUseCase]] = {
    Topics.SCREENING: {
        EventType.SIGNAL_SCREENED: service.signal_screened,
        EventType.CASE_ESCALATED: service.case_escalated,
        EventType.RESCREEN_DUE: service.rescreen_due,
    },
    Topics.MATCHING: {EventType.MATCHES_PROPOSED: service.matches_proposed},
    Topics.NOTIFY: {
        EventType.REFERRAL_UPDATED: service.referral_updated,
        EventType.FOLLOW_UP_RECORDED: service.follow_up_recorded,
    },
}


def register_handlers(consumer: EventConsumer, ctx: CaseworkContext) -> None:
    routes = {
        topic: {kind: _about_a_case(use_case, ctx.settings) for kind, use_case in use_cases.items()}
        for topic, use_cases in CASE_EVENTS.items()
    }
    consumer.subscribe({Topics.SIGNALS: {EventType.CAREGIVER_ERASED: on_erased}, **routes})


def _about_a_case(use_case: CaseUseCase, settings: CaseworkSettings) -> Handler:
    """Runs ``use_case`` in the consumer's transaction (with the inbox row)."""

    async def handle(conn: asyncpg.Connection, event: Envelope[Any]) -> None:
        await use_case(CaseworkUnitOfWork(conn), settings, event.subject, event.payload)

    return handle


async def on_erased(conn: asyncpg.Connection, event: Envelope[CaregiverErased]) -> None:
    await service.caregiver_erased(CaseworkUnitOfWork(conn), event.payload)
