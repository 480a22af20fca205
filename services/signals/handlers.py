"""Consumers that keep each signal's status view: one stage row per downstream event."""

from __future__ import annotations

from typing import Any

import asyncpg
import structlog

from services.signals import repository
from shared.consumer import Route
from shared.contracts import (
    CaseEscalated,
    Envelope,
    EventType,
    MatchesProposed,
    NotificationSent,
    SignalScreened,
    Topics,
)
from shared.service import Runtime

log = structlog.get_logger(__name__)


async def _record(
    conn: asyncpg.Connection, event: Envelope[Any], stage: str, occurred_at: Any,
    detail: dict[str, Any],
) -> None:
    p = event.payload
    known = await repository.add_stage(
        conn, p.signal_id, stage, occurred_at, event.event_id, detail, case_id=p.case_id
    )
    if not known:  # e.g. erased, or a signal from another environment: nothing to update
        log.warning("stage for unknown signal ignored", signal_id=str(p.signal_id), stage=stage)


async def on_screened(conn: asyncpg.Connection, event: Envelope[SignalScreened]) -> None:
    p = event.payload
    detail = {"result": p.result.model_dump(mode="json"), "case_id": str(p.case_id)}
    await _record(conn, event, "screened", p.screened_at, detail)


async def on_escalated(conn: asyncpg.Connection, event: Envelope[CaseEscalated]) -> None:
    p = event.payload
    detail = {"reason": p.reason, "risk_level": p.risk_level.value}
    await _record(conn, event, "escalated", p.escalated_at, detail)


async def on_matches(conn: asyncpg.Connection, event: Envelope[MatchesProposed]) -> None:
    p = event.payload
    detail = {
        "matches": [
            m.model_dump(mode="json", exclude={"contact_email"}) for m in p.matches
        ],
        "no_match_reason": p.no_match_reason,
    }
    await _record(conn, event, "matched", p.proposed_at, detail)


async def on_notification(conn: asyncpg.Connection, event: Envelope[NotificationSent]) -> None:
    p = event.payload
    detail = p.model_dump(
        mode="json", include={"recipient_role", "channel", "template", "status", "detail"}
    )
    await _record(conn, event, "notified", p.sent_at, detail)


def register_handlers(runtime: Runtime) -> None:
    runtime.consumer.subscribe({
        Topics.SCREENING: {
            EventType.SIGNAL_SCREENED: Route(SignalScreened, on_screened),
            EventType.CASE_ESCALATED: Route(CaseEscalated, on_escalated),
        },
        Topics.MATCHING: {EventType.MATCHES_PROPOSED: Route(MatchesProposed, on_matches)},
        Topics.NOTIFY: {EventType.NOTIFICATION_SENT: Route(NotificationSent, on_notification)},
    })
