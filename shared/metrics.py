"""Prometheus metrics every service exposes on ``/metrics``."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.messages = Counter(
            "sts_messages_handled_total",
            "Events consumed, by outcome (processed, duplicate, ignored, dead_lettered, parked, erased).",
            ["topic", "outcome"],
            registry=registry,
        )
        self.failures = Counter(
            "sts_handler_failures_total",
            "Failed attempts at handling an event (each retry counts), by kind: infrastructure "
            "(a dependency is away: waited out) or handler (dead-lettered if it persists).",
            ["topic", "error_type", "kind"],
            registry=registry,
        )
        self.waiting = Gauge(
            "sts_consumer_waiting",
            "Consumer lanes holding a record until a dependency (database, broker) is back.",
            ["topic"],
            registry=registry,
        )
        self.lag = Gauge(
            "sts_consumer_lag",
            "Records not yet consumed (high watermark minus position), per topic and partition.",
            ["topic", "partition"],
            registry=registry,
        )
        self.dlq = Counter(
            "sts_dlq_messages_total", "Events sent to a dead-letter topic.", ["topic"], registry=registry
        )
        self.handle_seconds = Histogram(
            "sts_handler_seconds", "Time to handle one event.", ["topic"], registry=registry
        )
        self.published = Counter(
            "sts_outbox_published_total", "Events published by the outbox relay.", ["topic"], registry=registry
        )
        self.publish_errors = Counter(
            "sts_outbox_publish_errors_total", "Failed outbox publish batches.", registry=registry
        )
        self.outbox_pending = Gauge("sts_outbox_pending", "Outbox events not yet published.", registry=registry)
        self.outbox_oldest_age = Gauge(
            "sts_outbox_oldest_pending_age_seconds",
            "Age of the oldest outbox event not yet published (0 when none).",
            registry=registry,
        )
        self.http_requests = Counter(
            "sts_http_requests_total", "HTTP requests.", ["method", "route", "status"], registry=registry
        )
        self.http_seconds = Histogram(
            "sts_http_request_seconds", "Time to answer an HTTP request.", ["method", "route"], registry=registry
        )
        self.dead_letters = Gauge(
            "sts_dead_letters",
            "Dead letters not resolved yet, by status (dead, parked, replaying): the DLQ size.",
            ["status"],
            registry=registry,
        )
        self.ready = Gauge(
            "sts_ready",
            "1 when /healthz answers ready (database, broker, every lane and loop), else 0.",
            registry=registry,
        )
        self.up = Gauge("sts_up", "1 while the service runs.", ["service"], registry=registry)
        self.up.labels(service).set(1)
