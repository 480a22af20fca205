"""Store planned messages, rendered, in the caller's transaction, and report outcomes.

A message is rendered once, when planned, so a retry sends exactly what was decided. A
suppressed message (no consent, "do not contact", no address) is stored without content
and reported at once, so the referrer sees that someone was deliberately not contacted;
the others are reported by the delivery worker once their outcome is known."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from services.notify import domain, repository
from services.notify.context import NotifyContext, NotifyUnitOfWork
from services.notify.sms import address_digest
from services.notify.templates import render
from shared.contracts import (
    DeliveryStatus,
    EventType,
    NotificationSent,
    RecipientRole,
)


@dataclass(frozen=True)
class Scope:
    """The case a message belongs to, and how its events are keyed and correlated."""

    signal_id: UUID
    case_id: UUID
    correlation_id: str
    subject_key: str
    organisation_id: UUID | None = None


async def report(
    conn: asyncpg.Connection,
    ctx: NotifyContext,
    row: dict[str, Any],
    status: DeliveryStatus,
    detail: str | None,
) -> None:
    """Emit notification.sent for a message whose outcome is now known."""
    payload = NotificationSent(
        signal_id=row["signal_id"],
        case_id=row["case_id"],
        notification_id=row["id"],
        recipient_role=row["recipient_role"],
        channel=row["channel"],
        template=row["template"],
        status=status,
        sent_at=ctx.clock.now(),
        detail=detail,
    )
    await NotifyUnitOfWork(conn).emit(
        EventType.NOTIFICATION_SENT, payload, subject=row["subject_key"], correlation_id=row["correlation_id"]
    )
    ctx.metrics.deliveries.labels(row["channel"], status).inc()


def _content(notification_id: UUID, planned: domain.Planned, occurred_at: str) -> tuple[str, str, str | None]:
    if planned.channel == domain.SMS:
        rendered = render(planned.template, planned.language, planned.context, channel="sms")
        return rendered.subject, rendered.text, None
    rendered = render(planned.template, planned.language, planned.context)
    if planned.channel == domain.WEBHOOK:
        document = domain.webhook_document(notification_id, planned, rendered.subject, rendered.text, occurred_at)
        return rendered.subject, json.dumps(document, ensure_ascii=False), None
    return rendered.subject, rendered.text, rendered.html


async def store(conn: asyncpg.Connection, ctx: NotifyContext, scope: Scope, planned: domain.Planned) -> bool:
    """Store one planned message unless its dedupe key was seen; True when it is new."""
    notification_id = uuid4()
    if (
        planned.recipient_role == RecipientRole.CAREGIVER
        and planned.address
        and not planned.suppressed_reason
        and await repository.is_do_not_contact(conn, address_digest(planned.address))
    ):
        planned = replace(planned, suppressed_reason="the caregiver replied STOP")
    if planned.suppressed_reason:
        subject, text, html = "", "", None
    else:
        subject, text, html = _content(notification_id, planned, ctx.clock.now().isoformat())
    row = {
        "id": notification_id,
        "dedupe_key": planned.dedupe_key,
        "signal_id": scope.signal_id,
        "case_id": scope.case_id,
        "correlation_id": scope.correlation_id,
        "subject_key": scope.subject_key,
        "organisation_id": scope.organisation_id,
        "referral_id": planned.referral_id,
        "recipient_role": planned.recipient_role,
        "channel": planned.channel,
        "address": None if planned.suppressed_reason else planned.address,
        "template": planned.template,
        "language": planned.language,
        "subject": subject,
        "body_text": text,
        "body_html": html,
        "status": DeliveryStatus.SUPPRESSED if planned.suppressed_reason else DeliveryStatus.PENDING,
        "last_error": planned.suppressed_reason,
    }
    created = await repository.insert_notification(conn, **row)
    if created and planned.suppressed_reason:
        await report(conn, ctx, row, DeliveryStatus.SUPPRESSED, planned.suppressed_reason)
    return created


async def store_all(
    conn: asyncpg.Connection,
    ctx: NotifyContext,
    scope: Scope,
    planned: list[domain.Planned],
) -> None:
    for message in planned:
        await store(conn, ctx, scope, message)
