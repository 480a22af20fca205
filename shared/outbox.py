"""Transactional outbox: ``add_event`` in the state change's transaction, ``OutboxRelay``
publishes afterwards.

The relay claims pending rows with ``FOR UPDATE SKIP LOCKED`` (so replicas never publish the
same row concurrently), publishes them in id order, waits for the broker's acks and only
then marks them published. A crash between publish and mark re-publishes: delivery is at
least once, and consumers are idempotent through their inbox."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import asyncpg
import structlog
from faststream.kafka import KafkaBroker
from pydantic import BaseModel

from shared.contracts import Envelope
from shared.metrics import Metrics

log = structlog.get_logger(__name__)

NOTIFY_CHANNEL = "outbox"


def event_headers(envelope: Envelope[Any]) -> dict[str, str]:
    return {
        "event_id": str(envelope.event_id),
        "event_type": envelope.event_type,
        "event_version": str(envelope.version),
        "correlation_id": envelope.correlation_id,
        "producer": envelope.producer,
        "content-type": "application/json",
    }


async def add_event(conn: asyncpg.Connection, topic: str, envelope: Envelope[Any]) -> None:
    """Queue ``envelope`` for ``topic``; call inside the transaction that changes the state."""
    await conn.execute(
        """INSERT INTO outbox (event_id, topic, key, headers, body)
           VALUES ($1, $2, $3, $4, $5)""",
        envelope.event_id,
        topic,
        envelope.subject,
        event_headers(envelope),
        envelope.model_dump_json(),
    )
    # Delivered on commit only; wakes the relay so latency is not bound to its poll interval.
    await conn.execute("SELECT pg_notify($1, '')", NOTIFY_CHANNEL)


def new_event(
    event_type: str,
    payload: BaseModel,
    *,
    producer: str,
    subject: str,
    correlation_id: str,
    causation_id: Any = None,
) -> Envelope[Any]:
    return Envelope[type(payload)](  # type: ignore[misc]
        event_type=event_type,
        payload=payload,
        producer=producer,
        subject=subject,
        correlation_id=correlation_id,
        causation_id=causation_id,
    )


class OutboxRelay:
    def __init__(
        self,
        pool: asyncpg.Pool,
        broker: KafkaBroker,
        metrics: Metrics,
        *,
        batch_size: int = 200,
        poll_seconds: float = 1.0,
        retention_hours: float = 24.0,
    ) -> None:
        self._pool = pool
        self._broker = broker
        self._metrics = metrics
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds
        self._retention_hours = retention_hours
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._listen_conn: asyncpg.Connection | None = None

    async def start(self) -> None:
        self._listen_conn = await self._pool.acquire()
        await self._listen_conn.add_listener(NOTIFY_CHANNEL, self._on_notify)
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        """Finish the batch in flight, then stop."""
        self._stopping = True
        self._wakeup.set()
        if self._task:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._listen_conn is not None:
            with contextlib.suppress(Exception):
                await self._listen_conn.remove_listener(NOTIFY_CHANNEL, self._on_notify)
            await self._pool.release(self._listen_conn)
            self._listen_conn = None

    def _on_notify(self, *_: Any) -> None:
        self._wakeup.set()

    async def _run(self) -> None:
        failures = 0
        last_purge = 0.0
        loop = asyncio.get_running_loop()
        while not self._stopping:
            self._wakeup.clear()
            try:
                published = await self.publish_batch()
                failures = 0
                if loop.time() - last_purge > 60:
                    await self.purge()
                    last_purge = loop.time()
            except Exception as exc:  # the broker or database is away: back off, keep rows
                failures += 1
                published = 0
                self._metrics.publish_errors.inc()
                log.warning("outbox publish failed", error=repr(exc), attempt=failures)
                await asyncio.sleep(min(0.2 * 2**failures, 10.0))
                continue
            if published < self._batch_size:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), self._poll_seconds)

    async def publish_batch(self) -> int:
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                """SELECT id, topic, key, headers, body FROM outbox
                   WHERE published_at IS NULL ORDER BY id LIMIT $1
                   FOR UPDATE SKIP LOCKED""",
                self._batch_size,
            )
            if not rows:
                return 0
            futures = [
                await self._broker.publish(
                    row["body"].encode(),
                    topic=row["topic"],
                    key=row["key"].encode(),
                    headers=row["headers"],
                    correlation_id=row["headers"].get("correlation_id"),
                    no_confirm=True,
                )
                for row in rows
            ]
            await asyncio.gather(*futures)
            await conn.execute(
                "UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])",
                [row["id"] for row in rows],
            )
        for row in rows:
            self._metrics.published.labels(row["topic"]).inc()
        return len(rows)

    async def purge(self) -> None:
        await self._pool.execute(
            "DELETE FROM outbox WHERE published_at < now() - make_interval(secs => $1)",
            self._retention_hours * 3600,
        )


async def forget_subject(conn: asyncpg.Connection, subject: str) -> None:
    """Erasure: drop the retained copies of a caregiver's events and dead letters.

    Unpublished events stay: they are still owed to their consumers, who erase in turn."""
    await conn.execute("DELETE FROM outbox WHERE key = $1 AND published_at IS NOT NULL", subject)
    await conn.execute("DELETE FROM dead_letters WHERE key = $1", subject)


async def replay_retained(pool: asyncpg.Pool) -> int:
    """Mark every retained event for publishing again (after the broker lost its data)."""
    result = await pool.execute("UPDATE outbox SET published_at = NULL WHERE published_at IS NOT NULL")
    return int(result.split()[-1])
