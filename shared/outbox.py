"""Transactional outbox: ``add_event`` in the state change's transaction, ``OutboxRelay``
publishes afterwards.

The relay claims pending rows with ``FOR UPDATE SKIP LOCKED`` (so replicas never publish the
same row concurrently), publishes them in id order, waits for the broker's acks and only
then marks them published. A crash between publish and mark re-publishes: delivery is at
least once, and consumers are idempotent through their inbox. The relay never dies on an
error: it backs off and tries again, and re-opens its LISTEN connection after a database
restart (polling meanwhile)."""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

import asyncpg
import structlog
from faststream.kafka import KafkaBroker

from shared.contracts import CaregiverErased, Envelope, ErasureScope, P
from shared.logging import describe_error
from shared.metrics import Metrics
from shared.sealing import wire
from shared.worker import Heartbeat

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
    await conn.execute("SELECT pg_notify($1, '')", NOTIFY_CHANNEL)


async def add_record(
    conn: asyncpg.Connection, topic: str, key: str | None, headers: Mapping[str, str], body: bytes
) -> None:
    """Queue a copy of a record this service did not create (a dead letter's DLQ copy, a
    replay), byte for byte. Its own outbox id: the event id inside may be queued already."""
    await conn.execute(
        """INSERT INTO outbox (event_id, topic, key, headers, body_bytes)
           VALUES ($1, $2, $3, $4, $5)""",
        uuid.uuid4(), topic, key or "", dict(headers), body,
    )
    await conn.execute("SELECT pg_notify($1, '')", NOTIFY_CHANNEL)


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
        self.heartbeat = Heartbeat("outbox-relay", stale_after=max(poll_seconds * 3, 30.0))

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-relay")
        self.heartbeat.task = self._task

    async def stop(self) -> None:
        """Finish the batch in flight, then stop."""
        self._stopping = True
        self._wakeup.set()
        if self._task:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._drop_listener()

    def _on_notify(self, *_: Any) -> None:
        self._wakeup.set()

    async def _listen(self) -> None:
        """(Re-)open the LISTEN connection when it is gone, e.g. after a database restart."""
        if self._listening():
            return
        await self._drop_listener()
        conn = await self._pool.acquire()
        try:
            await conn.add_listener(NOTIFY_CHANNEL, self._on_notify)
            # Lost (database restart): wake up to re-listen now, not after the poll interval.
            conn.add_termination_listener(self._on_notify)
        except BaseException:
            await self._pool.release(conn)
            raise
        self._listen_conn = conn
        log.info("outbox relay listening")

    def _listening(self) -> bool:
        try:
            return self._listen_conn is not None and not self._listen_conn.is_closed()
        except asyncpg.InterfaceError:  # the pool took back the connection when it died
            return False

    async def _drop_listener(self) -> None:
        conn, self._listen_conn = self._listen_conn, None
        if conn is None:
            return
        with contextlib.suppress(Exception):
            await conn.remove_listener(NOTIFY_CHANNEL, self._on_notify)
        with contextlib.suppress(Exception):
            await self._pool.release(conn)

    async def _run(self) -> None:
        failures = 0
        last_purge = 0.0
        loop = asyncio.get_running_loop()
        while not self._stopping:
            self.heartbeat.beat()
            self._wakeup.clear()
            try:
                # A NOTIFY missed while the listener was away is covered by this round.
                await self._listen()
                published = await self.publish_batch()
                failures = 0
                if loop.time() - last_purge > 60:
                    await self.purge()
                    last_purge = loop.time()
            except Exception as exc:  # the broker or database is away: back off, keep rows
                failures += 1
                self._metrics.publish_errors.inc()
                log.warning("outbox publish failed", error=describe_error(exc), attempt=failures)
                # Jittered backoff; nothing secret depends on the random draw.
                await self._sleep(min(0.2 * 2 ** min(failures, 10), 10.0) * random.uniform(0.5, 1.0))  # noqa: S311
                continue
            if published < self._batch_size:
                await self._sleep(self._poll_seconds)

    async def _sleep(self, seconds: float) -> None:
        """Wait, but wake for a NOTIFY or a stop."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), seconds)

    async def publish_batch(self) -> int:
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                """SELECT id, topic, key, headers, body, body_bytes FROM outbox
                   WHERE published_at IS NULL ORDER BY id LIMIT $1
                   FOR UPDATE SKIP LOCKED""",
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
        subject, patterns)
    await conn.execute(
        "DELETE FROM dead_letters WHERE key = $1 AND encode(body, 'escape') LIKE ANY($2::text[])",
        subject, patterns)


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
