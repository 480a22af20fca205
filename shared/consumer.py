"""Idempotent event consumption with bounded retries and a dead-letter topic.

For every record: parse the envelope (a record that is not one is poison: straight to the
DLQ), route by ``event_type`` (unknown types are ignored, contracts are additive), then in
ONE transaction insert the inbox row and run the handler, which writes its state and its
outbox events. A redelivered event hits the inbox row and is skipped. A failing handler is
retried a bounded number of times, then the record goes to ``<topic>.dlq`` with the error
and its origin in headers. Only after that does FastStream commit the offset; if even the
DLQ publish fails the record is nacked (the consumer seeks back), so nothing is lost."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import structlog
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from pydantic import BaseModel, ValidationError

from shared.contracts import Envelope, RawEnvelope, Topics
from shared.metrics import Metrics

log = structlog.get_logger(__name__)

Handler = Callable[[asyncpg.Connection, Envelope[Any]], Awaitable[None]]


class PermanentError(Exception):
    """The event can never be handled (it contradicts the contract): no retries, DLQ."""


@dataclass(frozen=True)
class Route:
    payload: type[BaseModel]
    handler: Handler


@dataclass
class ConsumerSettings:
    group_id: str
    max_attempts: int = 4
    backoff_seconds: float = 0.2
    # Group members per subscriber: partitions are processed in parallel, each in order.
    workers: int = 3


class EventConsumer:
    """Registers one FastStream subscriber per topic and runs every event through the inbox."""

    def __init__(
        self, broker: KafkaBroker, pool_getter: Callable[[], asyncpg.Pool], metrics: Metrics,
        settings: ConsumerSettings,
    ) -> None:
        self._broker = broker
        # The pool is created in the app's lifespan, after handlers are registered.
        self._pool = pool_getter
        self._metrics = metrics
        self._settings = settings
        self.topics: list[str] = []

    def subscribe(self, routes: dict[str, dict[str, Route]]) -> None:
        """One subscriber per topic, each in its own consumer group (``<service>.<topic>``,
        so topics never rebalance each other) with ``workers`` members: partitions are
        handled in parallel, each partition in order, so one caregiver's events stay ordered."""
        for topic, topic_routes in routes.items():
            self.topics.append(topic)

            self._broker.subscriber(
                topic,
                group_id=f"{self._settings.group_id}.{topic}",
                auto_offset_reset="earliest",
                ack_policy=AckPolicy.NACK_ON_ERROR,
                max_workers=self._settings.workers,
                title=f"{self._settings.group_id}:{topic}",
            )(self._consumer_for(topic, topic_routes))

    def _consumer_for(self, topic: str, routes: dict[str, Route]) -> Callable[..., Awaitable[None]]:
        # FastStream injects a handler's parameters from the message: bind these by closure.
        async def consume(message: KafkaMessage) -> None:
            await self.handle_record(topic, routes, message)

        return consume

    async def handle_record(self, topic: str, routes: dict[str, Route], message: Any) -> None:
        record = message.raw_message
        body: bytes = message.body
        structlog.contextvars.unbind_contextvars("correlation_id", "event_id", "event_type")
        try:
            raw = RawEnvelope.model_validate_json(body)
        except ValidationError as exc:
            await self._dead_letter(topic, record, body, None, PermanentError(_describe(exc)), 0)
            return
        structlog.contextvars.bind_contextvars(
            correlation_id=raw.correlation_id, event_id=str(raw.event_id), event_type=raw.event_type
        )
        route = routes.get(raw.event_type)
        if route is None:
            self._metrics.messages.labels(topic, "ignored").inc()
            return
        try:
            # The envelope is valid already: only the payload needs its type.
            event = raw.model_copy(update={"payload": route.payload.model_validate(raw.payload)})
        except ValidationError as exc:
            await self._dead_letter(topic, record, body, raw, PermanentError(_describe(exc, "payload")), 0)
            return

        started = time.perf_counter()
        error: Exception | None = None
        for attempt in range(1, self._settings.max_attempts + 1):
            try:
                outcome = await self._apply(topic, event, route.handler)
            except PermanentError as exc:
                await self._dead_letter(topic, record, body, raw, exc, attempt)
                return
            except Exception as exc:
                error = exc
                self._metrics.failures.labels(topic, type(exc).__name__).inc()
                log.warning("handler failed", topic=topic, attempt=attempt, error=repr(exc))
                if attempt < self._settings.max_attempts:
                    await asyncio.sleep(self._settings.backoff_seconds * 2 ** (attempt - 1))
                continue
            self._metrics.messages.labels(topic, outcome).inc()
            self._metrics.handle_seconds.labels(topic).observe(time.perf_counter() - started)
            return
        assert error is not None
        await self._dead_letter(topic, record, body, raw, error, self._settings.max_attempts)

    async def _apply(self, topic: str, event: Envelope[Any], handler: Handler) -> str:
        async with self._pool().acquire() as conn, conn.transaction():
            fresh = await conn.fetchval(
                """INSERT INTO inbox (event_id, consumer, topic, event_type)
                   VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING true""",
                event.event_id,
                self._settings.group_id,
                topic,
                event.event_type,
            )
            if not fresh:
                log.info("duplicate event skipped", topic=topic)
                return "duplicate"
            await handler(conn, event)
        return "processed"

    async def _dead_letter(
        self, topic: str, record: Any, body: bytes, raw: RawEnvelope | None,
        error: Exception, attempts: int,
    ) -> None:
        error_text = str(error) or repr(error)
        headers = {k: v.decode(errors="replace") for k, v in (record.headers or ())}
        headers.update(
            {
                "dlq_error": error_text[:2000],
                "dlq_error_type": type(error).__name__,
                "dlq_origin_topic": record.topic,
                "dlq_origin_partition": str(record.partition),
                "dlq_origin_offset": str(record.offset),
                "dlq_consumer_group": f"{self._settings.group_id}.{topic}",
                "dlq_attempts": str(attempts),
                "dlq_failed_at": datetime.now(UTC).isoformat(),
            }
        )
        # Kafka first: if it fails the record is nacked and redelivered, never dropped.
        await self._broker.publish(body, topic=Topics.dlq(topic), key=record.key, headers=headers)
        self._metrics.dlq.labels(topic).inc()
        self._metrics.messages.labels(topic, "dead_lettered").inc()
        log.error(
            "event dead-lettered", topic=topic, error=error_text, error_type=type(error).__name__,
            partition=record.partition, offset=record.offset, attempts=attempts,
        )
        try:
            await self._pool().execute(
                """INSERT INTO dead_letters (topic, partition, "offset", consumer, event_id,
                       error_type, error, attempts, body, key)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)""",
                topic, record.partition, record.offset, self._settings.group_id,
                str(raw.event_id) if raw else None, type(error).__name__, error_text, attempts, body,
                record.key.decode(errors="replace") if record.key else None,
            )
        except Exception as exc:  # the DLQ topic has it; the table is the operator's copy
            log.warning("dead letter not recorded in database", error=repr(exc))


def _describe(exc: ValidationError, *prefix: str) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in (*prefix, *err['loc'])) or '(body)'}: {err['msg']}" for err in exc.errors()
    )
