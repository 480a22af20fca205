"""Store planned messages, rendered, in the caller's transaction, and report outcomes.

A message is rendered once, when planned, so a retry sends exactly what was decided. A
suppressed message (no consent, "do not contact", no address) is stored without content
and reported at once, so the referrer sees that someone was deliberately not contacted;
the others are reported by the delivery worker once their outcome is known."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from uuid import UUID, uuid4

from services.notify import domain
from services.notify.context import NotifyContext
from services.notify.domain import Notification
from services.notify.repository import NotifyUnitOfWork
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
    uow: NotifyUnitOfWork,
    ctx: NotifyContext,
    message: Notification,
    status: DeliveryStatus,
    detail: str | None,
) -> None:
    """Emit notification.sent for a message whose outcome is now known."""
    # By field name: the event takes the message's ids, recipient, channel and template.
    outcome = {"notification_id": message.id, "status": status, "sent_at": ctx.clock.now(), "detail": detail}
    payload = NotificationSent(**vars(message) | outcome)
    await uow.emit(
        EventType.NOTIFICATION_SENT, payload, subject=message.subject_key, correlation_id=message.correlation_id
    )
    ctx.metrics.deliveries.labels(message.channel, status).inc()


def _content(notification_id: UUID, planned: domain.Planned, occurred_at: str) -> tuple[str, str, str | None]:
    if planned.channel == domain.SMS:
        rendered = render(planned.template, planned.language, planned.context, channel="sms")
        return rendered.subject, rendered.text, None
    rendered = render(planned.template, planned.language, planned.context)
    if planned.channel == domain.WEBHOOK:
        document = domain.webhook_document(notification_id, planned, rendered.subject, rendered.text, occurred_at)
        return rendered.subject, json.dumps(document, ensure_ascii=False), None
    return rendered.subject, rendered.text, rendered.html


async def store(uow: NotifyUnitOfWork, ctx: NotifyContext, scope: Scope, planned: domain.Planned) -> bool:
    """Store one planned message unless its dedupe key was seen; True when it is new."""
    notification_id = uuid4()
    if (
        planned.recipient_role == RecipientRole.CAREGIVER
        and planned.address
        and not planned.suppressed_reason
        and await uow.notifications.is_do_not_contact(address_digest(planned.address))
    ):
        planned = replace(planned, suppressed_reason="the caregiver replied STOP")
    if planned.suppressed_reason:
        subject, text, html = "", "", None
    else:
        subject, text, html = _content(notification_id, planned, ctx.clock.now().isoformat())
    message = Notification(
        id=notification_id,
        **vars(scope),
        referral_id=planned.referral_id,
        recipient_role=planned.recipient_role,
        channel=planned.channel,
        address=None if planned.suppressed_reason else planned.address,
        template=planned.template,
        language=planned.language,
        dedupe_key=planned.dedupe_key,
        subject=subject,
        body_text=text,
        body_html=html,
        status=DeliveryStatus.SUPPRESSED if planned.suppressed_reason else DeliveryStatus.PENDING,
        last_error=planned.suppressed_reason,
    )
    created = await uow.notifications.add(message)
    if created and planned.suppressed_reason:
        await report(uow, ctx, message, DeliveryStatus.SUPPRESSED, planned.suppressed_reason)
    return created


async def store_all(uow: NotifyUnitOfWork, ctx: NotifyContext, scope: Scope, planned: list[domain.Planned]) -> None:
    for message in planned:
        await store(uow, ctx, scope, message)
