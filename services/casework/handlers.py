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
from shared.consumer import Handler
from shared.contracts import (
    CaregiverErased,
    Envelope,
    EventType,
    Topics,
)
from shared.service import Runtime

# A use case about one case: (unit of work, settings, the event's subject, its payload).
CaseUseCase = Callable[[CaseworkUnitOfWork, CaseworkSettings, str, Any], Awaitable[None]]


def make_handlers(settings: CaseworkSettings) -> dict[str, Handler]:
    """Each event's use case, run in the consumer's transaction (with the inbox row)."""

    def about_a_case(use_case: CaseUseCase) -> Handler:
        async def handle(conn: asyncpg.Connection, event: Envelope[Any]) -> None:
            await use_case(CaseworkUnitOfWork(conn), settings, event.subject, event.payload)

        return handle

    async def on_erased(conn: asyncpg.Connection, event: Envelope[CaregiverErased]) -> None:
        await service.caregiver_erased(CaseworkUnitOfWork(conn), event.payload)

    return {
        "screened": about_a_case(service.signal_screened),
        "escalated": about_a_case(service.case_escalated),
        "matches": about_a_case(service.matches_proposed),
        "referral": about_a_case(service.referral_updated),
        "follow_up": about_a_case(service.follow_up_recorded),
        "rescreen_due": about_a_case(service.rescreen_due),
        "erased": on_erased,
    }


def register_handlers(runtime: Runtime, context: CaseworkContext) -> None:
    h = make_handlers(context.settings)
    runtime.consumer.subscribe(
        {
            Topics.SIGNALS: {EventType.CAREGIVER_ERASED: h["erased"]},
            Topics.SCREENING: {
                EventType.SIGNAL_SCREENED: h["screened"],
                EventType.CASE_ESCALATED: h["escalated"],
                EventType.RESCREEN_DUE: h["rescreen_due"],
            },
            Topics.MATCHING: {EventType.MATCHES_PROPOSED: h["matches"]},
            Topics.NOTIFY: {
                EventType.REFERRAL_UPDATED: h["referral"],
                EventType.FOLLOW_UP_RECORDED: h["follow_up"],
            },
        }
    )
