"""Prometheus metrics every service exposes on ``/metrics``."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry()
        labels = {"registry": self.registry}
        self.messages = Counter(
            "sts_messages_handled_total",
            "Events consumed, by outcome (processed, duplicate, ignored, dead_lettered, parked, erased).",
            ["topic", "outcome"],
            **labels,
        )
        self.failures = Counter(
            "sts_handler_failures_total",
            "Failed attempts at handling an event (each retry counts), by kind: infrastructure "
            "(a dependency is away: waited out) or handler (dead-lettered if it persists).",
            ["topic", "error_type", "kind"],
            **labels,
        )
        self.waiting = Gauge(
            "sts_consumer_waiting",
            "Consumer lanes holding a record until a dependency (database, broker) is back.",
            ["topic"],
            **labels,
        )
        self.lag = Gauge(
            "sts_consumer_lag",
            "Records not yet consumed (high watermark minus position), per topic and partition.",
            ["topic", "partition"],
            **labels,
        )
        self.dlq = Counter(
            "sts_dlq_messages_total", "Events sent to a dead-letter topic.", ["topic"], **labels
        )
        self.handle_seconds = Histogram(
            "sts_handler_seconds", "Time to handle one event.", ["topic"], **labels
        )
        self.published = Counter(
            "sts_outbox_published_total", "Events published by the outbox relay.", ["topic"], **labels
        )
        self.publish_errors = Counter(
            "sts_outbox_publish_errors_total", "Failed outbox publish batches.", **labels
        )
        self.outbox_pending = Gauge(
            "sts_outbox_pending", "Outbox events not yet published.", **labels
        )
        self.outbox_oldest_age = Gauge(
            "sts_outbox_oldest_pending_age_seconds",
            "Age of the oldest outbox event not yet published (0 when none).",
            **labels,
        )
        self.http_requests = Counter(
            "sts_http_requests_total", "HTTP requests.", ["method", "route", "status"], **labels
        )
        self.http_seconds = Histogram(
            "sts_http_request_seconds", "Time to answer an HTTP request.", ["method", "route"], **labels
        )
        self.dead_letters = Gauge(
            "sts_dead_letters", "Dead letters not resolved yet, by status (dead, parked, replaying): the DLQ size.",
            ["status"], **labels
        )
        self.ready = Gauge(
            "sts_ready", "1 when /healthz answers ready (database, broker, every lane and loop), else 0.", **labels
        )
        self.up = Gauge("sts_up", "1 while the service runs.", ["service"], **labels)
        self.up.labels(service).set(1)
