"""Screening's own Prometheus metrics, in the service's registry (served on ``/metrics``).

Counted when the handler runs: a transaction that fails and is retried counts again, which
``sts_handler_failures_total`` makes visible; operators read these as rates and mixes."""

from __future__ import annotations

from shared.metrics import MetricSet, counter


class ScreeningMetrics(MetricSet):
    screenings = counter("sts_screenings_total", "Signals screened, by the case's risk level.", "risk_level")
    escalations = counter(
        "sts_escalations_total", "Cases escalated to the caregiver consultant, by the case's risk level.", "risk_level"
    )
