"""Broker factory and topic administration."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

import structlog
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from faststream.kafka import KafkaBroker

from shared.config import KafkaSettings
from shared.contracts import Topics

log = structlog.get_logger(__name__)


def create_broker(kafka: KafkaSettings, *, client_id: str, graceful_timeout: float) -> KafkaBroker:
    return KafkaBroker(
        kafka.bootstrap_servers,
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
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in dict.fromkeys(topics) if t not in existing]
        if not missing:
            return
        try:
            await admin.create_topics(
                [
                    NewTopic(t, num_partitions=kafka.partitions, replication_factor=kafka.replication_factor)
                    for t in missing
                ]
            )
        except TopicAlreadyExistsError:  # another service created it in the meantime
            pass
        log.info("topics created", topics=missing, partitions=kafka.partitions)
    finally:
        await admin.close()
