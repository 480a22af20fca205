"""Consume proposed matches; plan, render and store each notification in one transaction.

Suppressed notifications (no consent, "do not contact") are recorded and reported at once,
so the referrer sees that the caregiver was deliberately not contacted."""

from __future__ import annotations

from uuid import uuid4

import asyncpg

from services.notify import domain, repository
from services.notify.templates import render
from shared.consumer import Route
from shared.contracts import Envelope, EventType, MatchesProposed, NotificationSent, Topics, utcnow
from shared.outbox import add_event, new_event
from shared.service import Runtime


async def report(
    conn: asyncpg.Connection, *, producer: str, row: dict, status: str, detail: str | None,
) -> None:
    """Emit notification.sent for a notification whose outcome is now known."""
    payload = NotificationSent(
        signal_id=row["signal_id"], case_id=row["case_id"], notification_id=row["id"],
        recipient_role=row["recipient_role"], channel=row["channel"], template=row["template"],
        status=status, sent_at=utcnow(), detail=detail,
    )
    event = new_event(
        EventType.NOTIFICATION_SENT, payload, producer=producer, subject=row["subject_key"],
        correlation_id=row["correlation_id"],
    )
    await add_event(conn, Topics.NOTIFY, event)


def make_on_matches(producer: str):
    async def on_matches(conn: asyncpg.Connection, event: Envelope[MatchesProposed]) -> None:
        p = event.payload
        for planned in domain.plan(p):
            subject, body = render(planned.template, planned.language, planned.context)
            row = {
                "id": uuid4(),
                "dedupe_key": planned.dedupe_key(p.case_id, p.signal_id),
                "signal_id": p.signal_id,
                "case_id": p.case_id,
                "correlation_id": event.correlation_id,
                "subject_key": event.subject,
                "recipient_role": planned.recipient_role,
                "channel": planned.channel,
                "address": planned.address,
                "template": planned.template,
                "language": planned.language,
                "subject": subject,
                "body_text": body,
                "status": "suppressed" if planned.suppressed_reason else "pending",
                "last_error": planned.suppressed_reason,
            }
            created = await repository.insert_notification(conn, **row)
            if created and planned.suppressed_reason:
                await report(conn, producer=producer, row=row, status="suppressed",
                             detail=planned.suppressed_reason)

    return on_matches


def register_handlers(runtime: Runtime) -> None:
    runtime.consumer.subscribe({
        Topics.MATCHING: {
            EventType.MATCHES_PROPOSED: Route(MatchesProposed, make_on_matches(runtime.settings.service_name)),
        },
    })
