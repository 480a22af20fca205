"""Notify's own Prometheus metrics, in the service's registry (served on ``/metrics``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class NotifyMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.deliveries = Counter(
            "sts_notifications_total",
            "Notification outcomes by channel (delivered, retry, failed, suppressed).",
            ["channel", "outcome"], registry=registry,
        )
        self.breaker_state = Gauge(
            "sts_notify_breaker_state",
            "Circuit breaker per channel (per host for webhooks): 0 closed, 1 half-open, 2 open.",
            ["channel"], registry=registry,
        )
        self.oldest_pending = Gauge(
            "sts_notifications_oldest_pending_seconds",
            "Age of the oldest notification not sent yet (0 when none), as of the last delivery round.",
            registry=registry,
        )
        self.referral_updates = Counter(
            "sts_referral_updates_total", "Referral status changes.", ["status", "updated_by"], registry=registry,
        )
        self.reminders = Counter(
            "sts_referral_reminders_total", "Reminders to providers that did not answer in time.", registry=registry,
        )
        self.escalations = Counter(
            "sts_referral_escalations_total", "Unanswered referrals escalated to the caregiver consultant.",
            registry=registry,
        )
        self.follow_ups = Counter(
            "sts_follow_ups_total", "Follow-up questions asked and answers recorded.", ["event"], registry=registry,
        )
