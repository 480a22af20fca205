"""Prometheus metrics: one way to declare them, and the ones every service exposes on ``/metrics``.

A set of metrics is a class listing them as ``counter``/``gauge``/``histogram`` declarations (name,
help text, labels); making one registers them all in the given registry, and the instance's
attributes are then the live metrics. The shared ``Metrics`` owns the service's registry; a
service's own metrics (``services/<svc>/metrics.py``) are declared the same way and join it."""

from __future__ import annotations

from typing import Any, Generic, Self, TypeVar, overload

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

M = TypeVar("M", Counter, Gauge, Histogram)


class Declared(Generic[M]):
    """One metric of a ``MetricSet``: on an instance the attribute is the registered metric."""

    def __init__(self, kind: type[M], name: str, documentation: str, labels: tuple[str, ...]) -> None:
        self.kind: type[M] = kind
        self.name = name
        self.documentation = documentation
        self.labels = labels

    def __set_name__(self, owner: type, attribute: str) -> None:
        self.attribute = attribute

    def register(self, registry: CollectorRegistry) -> M:
        return self.kind(self.name, self.documentation, self.labels, registry=registry)

    @overload
    def __get__(self, instance: None, owner: type) -> Self: ...
    @overload
    def __get__(self, instance: object, owner: type) -> M: ...
    def __get__(self, instance: object | None, owner: type) -> Self | M:
        # Reached only for the class's own attribute: ``MetricSet`` puts each registered metric
        # in the instance's __dict__, which wins over a descriptor without __set__.
        if instance is not None:
            raise AttributeError(f"{owner.__name__}.{self.attribute} is not registered")
        return self


def counter(name: str, documentation: str, *labels: str) -> Declared[Counter]:
    return Declared(Counter, name, documentation, labels)


def gauge(name: str, documentation: str, *labels: str) -> Declared[Gauge]:
    return Declared(Gauge, name, documentation, labels)


def histogram(name: str, documentation: str, *labels: str) -> Declared[Histogram]:
    return Declared(Histogram, name, documentation, labels)


class MetricSet:
    """Registers the metrics its class declares in ``registry`` when made."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        declared: dict[str, Declared[Any]] = {}
        for cls in reversed(type(self).__mro__):
            declared |= {name: value for name, value in vars(cls).items() if isinstance(value, Declared)}
        for attribute, metric in declared.items():
            self.__dict__[attribute] = metric.register(registry)


class Metrics(MetricSet):
    """The consumer's, the outbox relay's, the HTTP layer's and the health metrics of a service,
    in a registry of its own."""

    messages = counter(
        "sts_messages_handled_total",
        "Events consumed, by outcome (processed, duplicate, ignored, dead_lettered, parked, erased).",
        "topic",
        "outcome",
    )
    failures = counter(
        "sts_handler_failures_total",
        "Failed attempts at handling an event (each retry counts), by kind: infrastructure "
        "(a dependency is away: waited out) or handler (dead-lettered if it persists).",
        "topic",
        "error_type",
        "kind",
    )
    waiting = gauge(
        "sts_consumer_waiting",
        "Consumer lanes holding a record until a dependency (database, broker) is back.",
        "topic",
    )
    lag = gauge(
        "sts_consumer_lag",
        "Records not yet consumed (high watermark minus position), per topic and partition.",
        "topic",
        "partition",
    )
    dlq = counter("sts_dlq_messages_total", "Events sent to a dead-letter topic.", "topic")
    handle_seconds = histogram("sts_handler_seconds", "Time to handle one event.", "topic")
    published = counter("sts_outbox_published_total", "Events published by the outbox relay.", "topic")
    publish_errors = counter("sts_outbox_publish_errors_total", "Failed outbox publish batches.")
    outbox_pending = gauge("sts_outbox_pending", "Outbox events not yet published.")
    outbox_oldest_age = gauge(
        "sts_outbox_oldest_pending_age_seconds", "Age of the oldest outbox event not yet published (0 when none)."
    )
    http_requests = counter("sts_http_requests_total", "HTTP requests.", "method", "route", "status")
    http_seconds = histogram("sts_http_request_seconds", "Time to answer an HTTP request.", "method", "route")
    dead_letters = gauge(
        "sts_dead_letters",
        "Dead letters not resolved yet, by status (dead, parked, replaying): the DLQ size.",
        "status",
    )
    ready = gauge("sts_ready", "1 when /healthz answers ready (database, broker, every lane and loop), else 0.")
    up = gauge("sts_up", "1 while the service runs.", "service")

    def __init__(self, service: str) -> None:
        super().__init__(CollectorRegistry())
        self.up.labels(service).set(1)
