"""The notify service: its consumers, its delivery and deadline workers, the provider API
and the pages behind the signed links in its messages."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI

from services.notify import pages, provider_api, repository, service
from services.notify.channels import Channel, email_channel
from services.notify.clock import Clock
from services.notify.config import NotifySettings
from services.notify.context import NotifyContext
from services.notify.deadlines import deadline_worker
from services.notify.delivery import DeliveryWorker
from services.notify.handlers import register_handlers
from services.notify.sms import HttpSmsGateway, SmsChannel, inbound_router
from services.notify.webhooks import WebhookChannel
from shared.application import with_context
from shared.contracts import Topics
from shared.service import Runtime, Worker, create_service_app
from shared.worker import Periodic

MIGRATIONS = Path(__file__).parent / "migrations"
DESCRIPTION = (
    "Tells the caregiver, the referrer and the providers, and closes the loop: providers answer "
    "referrals here (API or signed link), deadlines remind and escalate, and the caregiver is asked "
    "whether the support arrived."
)


def delivery_channels(settings: NotifySettings) -> dict[str, Channel]:
    channels: dict[str, Channel] = {
        "email": email_channel(settings),
        "webhook": WebhookChannel(settings.webhook_timeout, settings.webhook_allow_http_hosts),
    }
    if settings.sms_url:
        token = settings.sms_token.get_secret_value() if settings.sms_token else None
        channels["sms"] = SmsChannel(HttpSmsGateway(settings.sms_url, token, settings.sms_timeout))
    return channels


def create_app(settings: NotifySettings | None = None, clock: Clock | None = None) -> FastAPI:
    ctx = NotifyContext.create(settings or NotifySettings(), clock)
    register_handlers(ctx.runtime.consumer, ctx)
    app = create_service_app(
        ctx.runtime,
        migrations=MIGRATIONS,
        produces=[Topics.NOTIFY],
        workers=_workers(ctx),
        retention=repository.retention_purges,
        description=DESCRIPTION,
    )
    return with_context(app, ctx, provider_api.router, pages.router, inbound_router)


def _workers(ctx: NotifyContext) -> list[Callable[[Runtime], Worker]]:
    """The delivery worker, the deadlines, and the blanking of old confirmation messages."""
    return [
        lambda _: DeliveryWorker(ctx, delivery_channels(ctx.settings)),
        lambda _: deadline_worker(ctx),
        lambda _: _confirmation_blanker(ctx),
    ]


def _confirmation_blanker(ctx: NotifyContext) -> Periodic:
    """A self-referral's confirmation message loses its address once it cannot be used any more."""

    async def blank() -> None:
        async with ctx.begin() as uow:
            await service.retire_confirmations(uow, ctx.settings.confirmation_keep_hours)

    return Periodic("confirmation-blanker", 600, blank)
