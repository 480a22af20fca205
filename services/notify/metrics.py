"""Notify's own Prometheus metrics, in the service's registry (served on ``/metrics``): counters
kept as things happen, and gauges of deadlines read from its tables at each scrape."""

from __future__ import annotations

import asyncpg

from shared.contracts import ReferralStatus
from shared.metrics import MetricSet, counter, gauge


class NotifyMetrics(MetricSet):
    deliveries = counter(
        "sts_notifications_total",
        "Notification outcomes by channel (delivered, retry, failed, suppressed).",
        "channel",
        "outcome",
    )
    breaker_state = gauge(
        "sts_notify_breaker_state",
        "Circuit breaker per channel (per host for webhooks): 0 closed, 1 half-open, 2 open.",
        "channel",
    )
    oldest_pending = gauge(
        "sts_notifications_oldest_pending_seconds",
        "Age of the oldest notification not sent yet (0 when none), as of the last delivery round.",
    )
    referral_updates = counter("sts_referral_updates_total", "Referral status changes.", "status", "updated_by")
    reminders = counter("sts_referral_reminders_total", "Reminders to providers that did not answer in time.")
    escalations = counter(
        "sts_referral_escalations_total", "Unanswered referrals escalated to the caregiver consultant."
    )
    follow_ups = counter("sts_follow_ups_total", "Follow-up questions asked and answers recorded.", "event")
    past_deadline = gauge(
        "sts_referrals_past_deadline",
        "Referrals still requested after their response deadline (the provider has not answered).",
    )
    crisis_waiting = gauge(
        "sts_crisis_escalations_overdue",
        "Crisis referrals to the caregiver consultant not delivered a minute after the signal came in.",
    )

    async def refresh(self, pool: asyncpg.Pool) -> None:
        row = await pool.fetchrow(
            """SELECT
                 (SELECT count(*) FROM referrals WHERE status = $1 AND remind_at < now()) AS past_deadline,
                 (SELECT count(*) FROM notifications n JOIN referrals r ON r.case_id = n.case_id AND r.consultant
                  WHERE n.template = 'consultant_referral' AND n.status = 'pending'
                    AND r.result->>'risk_level' = 'crisis'
                    AND COALESCE((r.signal->>'received_at')::timestamptz, n.created_at) < now() - interval '1 minute'
                 ) AS crisis_waiting""",
            ReferralStatus.REQUESTED.value,
        )
        self.past_deadline.set(row["past_deadline"])
        self.crisis_waiting.set(row["crisis_waiting"])
