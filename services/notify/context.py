"""What notify's handlers, workers and routes share beyond the runtime: its settings, its
metrics, the clock, the channels it can deliver through and its signed links; and its unit of
work, here rather than in ``service`` so that the referral, message and follow-up modules that
``service`` builds on can publish through it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from services.notify.clock import Clock
from services.notify.config import NotifySettings
from services.notify.domain import EMAIL, SMS, STATUS_VIEW, WEBHOOK
from services.notify.links import Links
from services.notify.metrics import NotifyMetrics
from shared.contracts import Topics
from shared.uow import UnitOfWork


class NotifyUnitOfWork(UnitOfWork):
    """Notify's tables and the outbox in one transaction."""

    topic = Topics.NOTIFY
    producer = "notify"


@dataclass(frozen=True)
class NotifyContext:
    settings: NotifySettings
    metrics: NotifyMetrics
    clock: Clock
    links: Links

    @classmethod
    def create(cls, settings: NotifySettings, metrics: NotifyMetrics, clock: Clock) -> NotifyContext:
        base_url = (settings.public_url or f"http://{settings.host}:{settings.port}").rstrip("/")
        links = Links(base_url, settings.link_secret.get_secret_value(), timedelta(days=settings.link_ttl_days))
        return cls(settings, metrics, clock, links)

    @property
    def channels(self) -> frozenset[str]:
        """The channels messages can be planned for; SMS only with a gateway configured."""
        return frozenset({EMAIL, WEBHOOK, STATUS_VIEW} | ({SMS} if self.settings.sms_url else set()))
