"""Broker factory and topic administration, both with the configured security: PLAINTEXT
for the embedded broker, SASL (SCRAM) over TLS with the service's own principal in production."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Iterable
from typing import Any

import structlog
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.helpers import create_ssl_context
from faststream.kafka import KafkaBroker
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from shared.config import KafkaSettings
from shared.contracts import Topics

log = structlog.get_logger(__name__)


_SASL = {"SCRAM-SHA-512": SASLScram512, "SCRAM-SHA-256": SASLScram256, "PLAIN": SASLPlaintext}


def _ssl_context(kafka: KafkaSettings) -> ssl.SSLContext | None:
    if not kafka.security_protocol.endswith("SSL"):
        return None
    # Verifies the broker's certificate and host name against the CA file (or the system's).
    context: ssl.SSLContext = create_ssl_context(cafile=str(kafka.ssl_cafile) if kafka.ssl_cafile else None)
    return context


def client_security(kafka: KafkaSettings) -> dict[str, Any]:
    """aiokafka keyword arguments for the configured security protocol (none for PLAINTEXT)."""
    if kafka.security_protocol == "PLAINTEXT":
        return {}
    options: dict[str, Any] = {"security_protocol": kafka.security_protocol, "ssl_context": _ssl_context(kafka)}
    if kafka.security_protocol.startswith("SASL"):
        options.update(
            sasl_mechanism=kafka.sasl_mechanism,
            sasl_plain_username=kafka.sasl_username,
            sasl_plain_password=kafka.sasl_password.get_secret_value() if kafka.sasl_password else None,
        )
    return options


def broker_security(kafka: KafkaSettings) -> BaseSecurity | None:
    """The same, as FastStream's security object."""
    if kafka.security_protocol == "PLAINTEXT":
        return None
    context, use_ssl = _ssl_context(kafka), kafka.security_protocol.endswith("SSL")
    if not kafka.security_protocol.startswith("SASL"):
        return BaseSecurity(ssl_context=context, use_ssl=use_ssl)
    password = kafka.sasl_password.get_secret_value() if kafka.sasl_password else ""
    return _SASL[kafka.sasl_mechanism](kafka.sasl_username or "", password, ssl_context=context, use_ssl=use_ssl)


def create_broker(kafka: KafkaSettings, *, client_id: str, graceful_timeout: float) -> KafkaBroker:
    return KafkaBroker(
        kafka.bootstrap_servers,
        security=broker_security(kafka),
        client_id=client_id,
        enable_idempotence=kafka.idempotence,
        acks="all" if kafka.acks == "all" else int(kafka.acks),
        request_timeout_ms=kafka.request_timeout_ms,
        graceful_timeout=graceful_timeout,
        # FastStream logs every message at INFO; our consumer logs what matters.
        log_level=logging.DEBUG,
        # Through the root handler (shared.logging), so its lines are JSON and redacted too.
        logger=logging.getLogger("faststream.kafka"),
    )


async def start_broker(broker: KafkaBroker) -> None:
    """``broker.start()``, but the subscribers join their groups concurrently.

    FastStream starts them one after another, and a join takes seconds (the group
    coordinator waits for members), so a service with several topics would start slowly."""
    await broker.connect()
    await asyncio.gather(*(subscriber.start() for subscriber in broker.subscribers))
    for publisher in broker.publishers:
        await publisher.start()
    broker.running = True


def with_dlqs(topics: Iterable[str]) -> list[str]:
    return [t for topic in topics for t in (topic, Topics.dlq(topic))]


async def ensure_topics(kafka: KafkaSettings, topics: Iterable[str]) -> None:
    """Create missing topics with the configured partition count (idempotent)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers, **client_security(kafka))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in dict.fromkeys(topics) if t not in existing]
        if not missing:
            return
        with contextlib.suppress(TopicAlreadyExistsError):  # another service created it in the meantime
            await admin.create_topics(
                [
                    NewTopic(t, num_partitions=kafka.partitions, replication_factor=kafka.replication_factor)
                    for t in missing
                ]
            )
        log.info("topics created", topics=missing, partitions=kafka.partitions)
    finally:
        await admin.close()
