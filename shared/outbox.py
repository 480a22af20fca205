"""Transactional outbox: ``add_event`` in the state change's transaction, ``OutboxRelay``
publishes afterwards.

Replicas of a service share one outbox: a relay publishes only while it holds the database's
relay lock (a transaction-level advisory lock), so one batch is in flight at a time and a
caregiver's events leave in id order even with several instances; the others find the lock
taken and wait for the next round. The relay publishes its batch in id order, waits for the
broker's acks and only then marks the rows published. A crash between publish and mark re-publishes: delivery is at
least once, and consumers are idempotent through their inbox. The relay never dies on an
error: it backs off and tries again, and re-opens its LISTEN connection after a database
restart (polling meanwhile)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

import asyncpg
from faststream.kafka import KafkaBroker

from shared.contracts import CaregiverErased, Envelope, ErasureScope, P
from shared.listener import Listener, notify
from shared.metrics import Metrics
from shared.sealing import wire
from shared.worker import Periodic

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
    # A sealed signal leaves only as ciphertext: in the retained row, on the topic, in DLQs.
    envelope, body = wire(envelope)
    await conn.execute(
        """INSERT INTO outbox (event_id, topic, key, headers, body)
           VALUES ($1, $2, $3, $4, $5)""",
        envelope.event_id,
        topic,
        envelope.subject,
        event_headers(envelope),
        body,
    )
    # Delivered on commit only; wakes the relay so latency is not bound to its poll interval.
    await notify(conn, NOTIFY_CHANNEL)


async def add_record(
    conn: asyncpg.Connection, topic: str, key: str | None, headers: Mapping[str, str], body: bytes
) -> None:
    """Queue a copy of a record this service did not create (a dead letter's DLQ copy, a
    replay), byte for byte. Its own outbox id: the event id inside may be queued already."""
    await conn.execute(
        """INSERT INTO outbox (event_id, topic, key, headers, body_bytes)
           VALUES ($1, $2, $3, $4, $5)""",
        uuid.uuid4(),
        topic,
        key or "",
        dict(headers),
        body,
    )
    await notify(conn, NOTIFY_CHANNEL)


def new_event(
    event_type: str,
    payload: P,
    *,
    producer: str,
    subject: str,
    correlation_id: str,
    causation_id: UUID | None = None,
) -> Envelope[P]:
    # Parametrised by the payload's own class at run time: pydantic serialises a field by its
    # declared type, so this keeps every field of the payload. mypy cannot follow a type argument
    # known only at run time.
    envelope_type: type[Envelope[P]] = Envelope[type(payload)]  # type: ignore[misc,assignment]
    return envelope_type(
        event_type=event_type,
        payload=payload,
        producer=producer,
        subject=subject,
        correlation_id=correlation_id,
        causation_id=causation_id,
    )


# The relay lock's key in pg_advisory locks: an arbitrary constant, the same in every instance.
RELAY_LOCK = 7_300_001


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
        self._last_purge = 0.0
        self._loop = Periodic(
            "outbox-relay",
            poll_seconds,
            self._round,
            stale_after=max(poll_seconds * 3, 30.0),
            retry_seconds=0.2,
            on_error=lambda _: self._metrics.publish_errors.inc(),
        )
        self.heartbeat = self._loop.heartbeat
        self._listener = Listener(lambda: pool, NOTIFY_CHANNEL, self._loop.wake)

    async def start(self) -> None:
        await self._loop.start()

    async def stop(self) -> None:
        """Finish the batch in flight, then stop."""
        await self._loop.stop()
        await self._listener.close()

    async def _round(self) -> object:
        """One round: (re-)listen, publish a batch, purge now and then. A failure (the broker
        or database away) is retried by the loop with backoff; the rows stay."""
        # A NOTIFY missed while the listener was away is covered by this round.
        await self._listener.ensure()
        published = await self.publish_batch()
        if time.monotonic() - self._last_purge > 60:
            await self.purge()
            self._last_purge = time.monotonic()
        return Periodic.AGAIN if published >= self._batch_size else None

    async def publish_batch(self) -> int:
        async with self._pool.acquire() as conn, conn.transaction():
            # Two relays publishing disjoint batches at once could reorder one key's events.
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", RELAY_LOCK):
                return 0
            rows = await conn.fetch(
                """SELECT id, topic, key, headers, body, body_bytes FROM outbox
                   WHERE published_at IS NULL ORDER BY id LIMIT $1""",
                self._batch_size,
            )
            if not rows:
                return 0
            futures = [
                await self._broker.publish(
                    row["body_bytes"] if row["body_bytes"] is not None else row["body"].encode(),
                    topic=row["topic"],
                    key=row["key"].encode() or None,
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


async def forget_signals(conn: asyncpg.Connection, subject: str, signal_ids: Sequence[UUID]) -> None:
    """A withdrawal: like ``forget_subject``, but only the copies that name these signals;
    the caregiver's other signals (another organisation's) keep theirs."""
    patterns = [f"%{signal_id}%" for signal_id in signal_ids]
    await conn.execute(
        "DELETE FROM outbox WHERE key = $1 AND published_at IS NOT NULL AND body LIKE ANY($2::text[])",
        subject,
        patterns,
    )
    await conn.execute(
        "DELETE FROM dead_letters WHERE key = $1 AND encode(body, 'escape') LIKE ANY($2::text[])", subject, patterns
    )


async def forget_erased(conn: asyncpg.Connection, erasure: CaregiverErased, *, whole_subject: bool = False) -> None:
    """Drop the retained copies an erasure covers: the person's, or the withdrawn signals'
    (all of the person's too when ``whole_subject``: the withdrawal left nothing of them)."""
    if erasure.scope is ErasureScope.SIGNALS and not whole_subject:
        await forget_signals(conn, erasure.caregiver_pseudonym, erasure.signal_ids)
    else:
        await forget_subject(conn, erasure.caregiver_pseudonym)


async def replay_retained(pool: asyncpg.Pool) -> int:
    """Mark every retained event for publishing again (after the broker lost its data)."""
    result = await pool.execute("UPDATE outbox SET published_at = NULL WHERE published_at IS NOT NULL")
    return int(result.split()[-1])
