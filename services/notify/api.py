"""The notify service: its consumers, its delivery and deadline workers, the provider API
and the pages behind the signed links in its messages."""

from __future__ import annotations

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
from services.notify.sms import HttpSmsGateway, SmsChannel, inbound_router
from services.notify.webhooks import WebhookChannel
from shared.contracts import Topics
from shared.service import Runtime, create_runtime, create_service_app
from shared.worker import Periodic

MIGRATIONS = Path(__file__).parent / "migrations"


def delivery_channels(settings: NotifySettings) -> dict[str, Channel]:
    channels: dict[str, Channel] = {
        "email": email_channel(settings), "webhook": WebhookChannel(settings.webhook_timeout, settings.webhook_allow_http_hosts),
    }
    if settings.sms_url:
        token = settings.sms_token.get_secret_value() if settings.sms_token else None
        channels["sms"] = SmsChannel(HttpSmsGateway(settings.sms_url, token, settings.sms_timeout))
    return channels


def create_app(settings: NotifySettings | None = None, clock: Clock | None = None) -> FastAPI:
    settings = settings or NotifySettings()
    runtime = create_runtime(settings)
    metrics = NotifyMetrics(runtime.metrics.registry)
    runtime.metric_refreshers.append(metrics.refresh)
    ctx = NotifyContext.create(settings, metrics, clock or SystemClock())
    register_handlers(runtime, ctx)

    def delivery_worker(rt: Runtime) -> DeliveryWorker:
        worker = DeliveryWorker(rt, ctx, delivery_channels(settings))
        # Its breaker_states, for operators; its heartbeat is in /healthz.
        app.state.delivery = worker
        return worker

    def confirmation_blanker(rt: Runtime) -> Periodic:
        async def blank() -> None:
            async with rt.pool.acquire() as conn:
                await repository.blank_old_confirmations(conn, settings.confirmation_keep_hours)

        return Periodic("confirmation-blanker", 600, blank)

    app = create_service_app(
        runtime, title="signal-to-support: notify", migrations=MIGRATIONS, produces=[Topics.NOTIFY],
        workers=[delivery_worker, deadline_worker(ctx), confirmation_blanker], retention=repository.retention_purges,
        description="Tells the caregiver, the referrer and the providers, and closes the loop: providers "
        "answer referrals here (API or signed link), deadlines remind and escalate, and the caregiver is "
        "asked whether the support arrived.",
    )
    app.state.notify = ctx
    app.include_router(provider_api.router)
    app.include_router(pages.router)
    app.include_router(inbound_router)
    return app
