"""The declarative pieces every service builds on: a unit of work's repositories
(``shared.uow.Repository``), its topic and producer (``emit``), and a set of metrics
(``shared.metrics.MetricSet``)."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge

from deploy import catalogue
from shared.cli import SERVICES
from shared.metrics import Metrics, MetricSet, counter, gauge
from shared.uow import Repository, UnitOfWork


class Things:
    def __init__(self, conn: Any) -> None:
        self.conn = conn


class ThingsUnitOfWork(UnitOfWork):
    things = Repository(Things)


def test_a_repository_is_made_over_its_unit_of_works_connection_once() -> None:
    first, second = ThingsUnitOfWork(conn="first"), ThingsUnitOfWork(conn="second")
    assert first.things is first.things and first.things.conn == "first"
    assert second.things.conn == "second" and second.things is not first.things
    assert isinstance(ThingsUnitOfWork.things, Repository)


class Base(MetricSet):
    seen = counter("t_seen_total", "Things seen, by kind.", "kind")


class More(Base):
    level = gauge("t_level", "The level.")


def test_a_metric_set_registers_what_it_and_its_bases_declare_in_each_registry() -> None:
    one, two = CollectorRegistry(), CollectorRegistry()
    first, second = More(one), More(two)
    assert isinstance(first.seen, Counter) and isinstance(first.level, Gauge)
    first.seen.labels("a").inc()
    first.level.set(3)
    assert one.get_sample_value("t_seen_total", {"kind": "a"}) == 1.0 and one.get_sample_value("t_level") == 3.0
    assert two.get_sample_value("t_seen_total", {"kind": "a"}) is None and second.seen is not first.seen
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        More(one)


def test_the_shared_metrics_say_the_service_is_up() -> None:
    metrics = Metrics("signals")
    assert metrics.registry.get_sample_value("sts_up", {"service": "signals"}) == 1.0
    assert metrics.registry.get_sample_value("sts_ready") == 0.0


def test_each_service_publishes_on_the_topic_it_declares_under_its_own_name() -> None:
    # The unit of work's class attributes name the topic and producer of every event a service
    # emits; its app declares the topics it creates and the catalogue names the producer by them.
    publishing = {}
    for service in SERVICES:
        module = importlib.import_module(f"services.{service}.service")
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, UnitOfWork) and hasattr(value, "topic"):
                publishing[service] = value
    assert set(publishing) == {"signals", "screening", "matching", "notify", "casework"}
    for service, uow in publishing.items():
        assert uow.producer == service
        assert catalogue.declared(service).produces == (uow.topic,)
