"""The notify service: its consumers, its delivery and deadline workers, the provider API
and the pages behind the signed links in its messages."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI

from services.notify import pages, provider_api, repository
from services.notify.channels import Channel, email_channel
from services.notify.clock import Clock, SystemClock
from services.notify.config import NotifySettings
from services.notify.context import NotifyContext
from services.notify.deadlines import deadline_worker
from services.notify.delivery import DeliveryWorker
from services.notify.handlers import register_handlers
from services.notify.metrics import NotifyMetrics
from services.notify.service import NotifyUnitOfWork
from services.notify.sms import HttpSmsGateway, SmsChannel, inbound_router
from services.notify.webhooks import WebhookChannel
from shared.contracts import Topics
from shared.service import Runtime, create_runtime, create_service_app
from shared.worker import Periodic

MIGRATIONS = Path(__file__).parent / "migrations"


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
    settings = settings or NotifySettings()
    runtime = create_runtime(settings)
    ctx = NotifyContext.create(settings, NotifyMetrics(runtime.metrics.registry), clock or SystemClock())
    runtime.metric_refreshers.append(ctx.metrics.refresh)
    register_handlers(runtime, ctx)
    app: FastAPI  # the delivery worker's factory below reads it once the app exists
    app = create_service_app(
        runtime,
        title="signal-to-support: notify",
        migrations=MIGRATIONS,
        produces=[Topics.NOTIFY],
        workers=[lambda rt: _delivery_worker(app, rt, ctx), deadline_worker(ctx), _confirmation_blanker(settings)],
        retention=repository.retention_purges,
        description=DESCRIPTION,
    )
    app.state.notify = ctx
    for routes in (provider_api.router, pages.router, inbound_router):
        app.include_router(routes)
    return app


DESCRIPTION = (
    "Tells the caregiver, the referrer and the providers, and closes the loop: providers answer "
    "referrals here (API or signed link), deadlines remind and escalate, and the caregiver is asked "
    "whether the support arrived."
)


def _delivery_worker(app: FastAPI, runtime: Runtime, ctx: NotifyContext) -> DeliveryWorker:
    worker = DeliveryWorker(runtime, ctx, delivery_channels(ctx.settings))
    # Its breaker_states, for operators; its heartbeat is in /healthz.
    app.state.delivery = worker
    return worker


def _confirmation_blanker(settings: NotifySettings) -> Callable[[Runtime], Periodic]:
    """A self-referral's confirmation message loses its address once it cannot be used any more."""

    def make(runtime: Runtime) -> Periodic:
        async def blank() -> None:
            async with NotifyUnitOfWork.begin(runtime.pool) as uow:
                await repository.blank_old_confirmations(uow.conn, settings.confirmation_keep_hours)

        return Periodic("confirmation-blanker", 600, blank)

    return make
