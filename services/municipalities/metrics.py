"""The municipalities' own Prometheus metrics, in the service's registry (served on ``/metrics``):
what a data protection officer (and an operator) watches, how much is released and suppressed."""

from __future__ import annotations

from shared.metrics import MetricSet, counter


class MunicipalitiesMetrics(MetricSet):
    records = counter("sts_municipal_records_total", "Anonymous records by fate (released, suppressed).", "fate")
