"""What notify's handlers, workers and routes share, typed: the settings, the runtime (pool,
consumer, metrics registry), its own metrics, the clock, the channels it can deliver through
and its signed links. ``api.create_app`` puts it on the application; routes reach it through
``dependencies`` (``shared.context.app_context``)."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import timedelta

from services.notify.clock import Clock, SystemClock
from services.notify.config import NotifySettings
from services.notify.domain import EMAIL, SMS, STATUS_VIEW, WEBHOOK
from services.notify.links import Links
from services.notify.metrics import NotifyMetrics
from services.notify.repository import NotifyUnitOfWork
from shared.context import ServiceContext
from shared.service import create_runtime


@dataclass(frozen=True)
class NotifyContext(ServiceContext[NotifySettings]):
    metrics: NotifyMetrics
    clock: Clock
    links: Links

    @classmethod
    def create(cls, settings: NotifySettings, clock: Clock | None = None) -> NotifyContext:
        """The context of a new service process, its runtime made from ``settings`` (``clock``:
        the system's, unless a test moves one)."""
        runtime = create_runtime(settings)
        metrics = NotifyMetrics(runtime.metrics.registry)
        runtime.metric_refreshers.append(metrics.refresh)
        base_url = (settings.public_url or f"http://{settings.host}:{settings.port}").rstrip("/")
        links = Links(base_url, settings.link_secret.get_secret_value(), timedelta(days=settings.link_ttl_days))
        return cls(settings, runtime, metrics, clock or SystemClock(), links)

    @property
    def channels(self) -> frozenset[str]:
        """The channels messages can be planned for; SMS only with a gateway configured."""
        return frozenset({EMAIL, WEBHOOK, STATUS_VIEW} | ({SMS} if self.settings.sms_url else set()))

    def begin(self) -> AbstractAsyncContextManager[NotifyUnitOfWork]:
        """A unit of work of its own (routes, jobs), committed when the block ends."""
        return NotifyUnitOfWork.begin(self.pool)
