"""Consumers that keep each signal's status view: one stage row per downstream event.

A stage keeps only what the signal's referrer may see (see ``domain``): the signal's own
screening, not the case's; that a consultant is involved, not why. The case id is kept on
the signal, for the privacy officer's erasure, and never shown."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.signals import service
from services.signals.dependencies import SignalsContext
from services.signals.domain import Stage
from services.signals.service import SignalsUnitOfWork
from shared.consumer import EventConsumer, Routes
from shared.contracts import (
    CaseClosed,
    CaseEscalated,
    CaseTakenUp,
    Envelope,
    EventType,
    FollowUpRecorded,
    MatchesProposed,
    NotificationSent,
    ReferralUpdated,
    RescreenDue,
    SignalScreened,
    Topics,
)


async def _record(
    conn: asyncpg.Connection,
    event: Envelope[Any],
    stage: Stage,
    occurred_at: datetime,
    detail: dict[str, Any],
    signal_ids: Iterable[UUID] | None = None,
) -> None:
    """The stage on each signal the event is about (by default its payload's ``signal_id``)."""
    p = event.payload
    ids = [p.signal_id] if signal_ids is None else signal_ids
    await service.record_stage(SignalsUnitOfWork(conn), event.event_id, ids, stage, occurred_at, detail, p.case_id)


async def on_screened(conn: asyncpg.Connection, event: Envelope[SignalScreened]) -> None:
    p = event.payload
    # A producer from before own_result sent only the case's judgement.
    detail = {"result": (p.own_result or p.result).model_dump(mode="json")}
    await _record(conn, event, Stage.SCREENED, p.screened_at, detail)


async def on_escalated(conn: asyncpg.Connection, event: Envelope[CaseEscalated]) -> None:
    # Not the reason nor the level: they are the case's, built from other organisations' signals.
    await _record(conn, event, Stage.ESCALATED, event.payload.escalated_at, {})


async def on_matches(conn: asyncpg.Connection, event: Envelope[MatchesProposed]) -> None:
    p = event.payload
    detail = {
        "matches": [m.model_dump(mode="json", exclude={"contact_email"}) for m in p.matches],
        "no_match_reason": p.no_match_reason,
    }
    await _record(conn, event, Stage.MATCHED, p.proposed_at, detail)


async def on_notification(conn: asyncpg.Connection, event: Envelope[NotificationSent]) -> None:
    p = event.payload
    detail = p.model_dump(mode="json", include={"recipient_role", "channel", "template", "status", "detail"})
    await _record(conn, event, Stage.NOTIFIED, p.sent_at, detail)


async def on_referral(conn: asyncpg.Connection, event: Envelope[ReferralUpdated]) -> None:
    p = event.payload
    # Not the note: free text from a provider has no place in the referrer's view.
    detail = p.model_dump(mode="json", include={"referral_id", "service_name", "status", "reason_code", "updated_by"})
    await _record(conn, event, Stage.REFERRAL, p.updated_at, detail)


async def on_follow_up(conn: asyncpg.Connection, event: Envelope[FollowUpRecorded]) -> None:
    p = event.payload
    await _record(conn, event, Stage.FOLLOW_UP, p.recorded_at, {"support_arrived": p.support_arrived})


async def on_rescreen_due(conn: asyncpg.Connection, event: Envelope[RescreenDue]) -> None:
    p = event.payload
    # Not the level: it is the case's.
    await _record(conn, event, Stage.RESCREEN_DUE, p.due_at, {}, [p.last_signal_id])


async def on_taken_up(conn: asyncpg.Connection, event: Envelope[CaseTakenUp]) -> None:
    p = event.payload
    # Only that a person has it: not why, not which queue, not the other signals.
    await _record(conn, event, Stage.TAKEN_UP, p.taken_up_at, {}, p.signal_ids)


async def on_closed(conn: asyncpg.Connection, event: Envelope[CaseClosed]) -> None:
    p = event.payload
    # Not the reason: it is about the caregiver's life (a death, a move), not the referrer's.
    await _record(conn, event, Stage.CLOSED, p.closed_at, {}, p.signal_ids)


# Topic → event type → the stage it adds.
ROUTES: Routes = {
    Topics.SCREENING: {
        EventType.SIGNAL_SCREENED: on_screened,
        EventType.CASE_ESCALATED: on_escalated,
        EventType.RESCREEN_DUE: on_rescreen_due,
    },
    Topics.MATCHING: {EventType.MATCHES_PROPOSED: on_matches},
    Topics.NOTIFY: {
        EventType.NOTIFICATION_SENT: on_notification,
        EventType.REFERRAL_UPDATED: on_referral,
        EventType.FOLLOW_UP_RECORDED: on_follow_up,
    },
    Topics.CASEWORK: {EventType.CASE_TAKEN_UP: on_taken_up, EventType.CASE_CLOSED: on_closed},
}


def register_handlers(consumer: EventConsumer, ctx: SignalsContext) -> None:
    """The same signature in every service; the stages need nothing of the context."""
    consumer.subscribe(ROUTES)
