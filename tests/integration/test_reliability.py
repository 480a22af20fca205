"""The outbox, the inbox, bounded retries and the dead-letter topic, against a real
PostgreSQL and a real Kafka-compatible broker."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pydantic import BaseModel

from shared.config import KafkaSettings
from shared.consumer import ConsumerSettings, EventConsumer, PermanentError
from shared.contracts import Envelope, Topics
from shared.db import SHARED_MIGRATIONS, apply_migrations, create_pool
from shared.kafka import create_broker, ensure_topics, with_dlqs
from shared.metrics import Metrics
from shared.outbox import RELAY_LOCK, OutboxRelay, add_event, new_event

pytestmark = pytest.mark.integration


class Ping(BaseModel):
    n: int


@dataclass
class Harness:
    pool: asyncpg.Pool
    topic: str
    bootstrap: str
    metrics: Metrics
    calls: list[int] = field(default_factory=list)
    fail_times: dict[int, int] = field(default_factory=dict)

    async def publish_raw(self, body: bytes, key: bytes = b"k", headers: dict[str, str] | None = None) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap)
        await producer.start()
        try:
            await producer.send_and_wait(
                self.topic, body, key=key, headers=[(k, v.encode()) for k, v in (headers or {}).items()]
            )
        finally:
            await producer.stop()

    async def seen(self) -> list[int]:
        return [r["n"] for r in await self.pool.fetch("SELECT n FROM seen ORDER BY id")]

    async def until(self, predicate, timeout: float = 20) -> None:
        async with asyncio.timeout(timeout):
            while not await predicate():
                await asyncio.sleep(0.05)

    async def dead_letters(self, count: int) -> list[Any]:
        consumer = AIOKafkaConsumer(
            Topics.dlq(self.topic),
            bootstrap_servers=self.bootstrap,
            auto_offset_reset="earliest",
            group_id=f"r-{uuid.uuid4()}",
        )
        await consumer.start()
        records: list[Any] = []
        try:
            async with asyncio.timeout(20):
                while len(records) < count:
                    records.append(await consumer.getone())
        finally:
            await consumer.stop()
        return records


def envelope(n: int, event_id: uuid.UUID | None = None) -> Envelope[Any]:
    event = new_event("test.ping", Ping(n=n), producer="test", subject=f"s{n % 3}", correlation_id=f"c{n}")
    return event.model_copy(update={"event_id": event_id}) if event_id else event


@pytest.fixture
async def harness(database_url: str, kafka: Any) -> AsyncIterator[Harness]:
    conn = await asyncpg.connect(database_url)
    await apply_migrations(conn, {"shared": SHARED_MIGRATIONS})
    await conn.execute("CREATE TABLE seen (id serial PRIMARY KEY, n int NOT NULL)")
    await conn.close()
    pool = await create_pool(database_url, size=5)
    topic = f"test.{uuid.uuid4().hex[:8]}.v1"
    settings = KafkaSettings(bootstrap_servers=kafka.bootstrap, idempotence=kafka.idempotence, partitions=2)
    await ensure_topics(settings, with_dlqs([topic]))
    broker = create_broker(settings, client_id="test", graceful_timeout=5)
    metrics = Metrics("test")
    h = Harness(pool, topic, kafka.bootstrap, metrics)

    async def handle(conn: asyncpg.Connection, event: Envelope[Ping]) -> None:
        n = event.payload.n
        h.calls.append(n)
        if n < 0:
            raise PermanentError(f"negative ping {n}")
        if h.fail_times.get(n, 0) > 0:
            h.fail_times[n] -= 1
            await conn.execute("INSERT INTO seen (n) VALUES ($1)", n)  # rolled back with the failure
            raise RuntimeError(f"transient failure for {n}")
        await conn.execute("INSERT INTO seen (n) VALUES ($1)", n)

    consumer = EventConsumer(
        broker,
        lambda: pool,
        metrics,
        ConsumerSettings(
            group_id=f"g-{uuid.uuid4().hex[:6]}", max_attempts=3, backoff_seconds=0.01, dead_letter_after_seconds=0
        ),
        payloads={"test.ping": Ping},
    )
    consumer.subscribe({topic: {"test.ping": handle}})
    relay = OutboxRelay(pool, broker, metrics, poll_seconds=0.2)
    await broker.start()
    await relay.start()
    try:
        yield h
    finally:
        await relay.stop()
        await broker.stop()
        await pool.close()


async def _emit(h: Harness, *events: Envelope[Any]) -> None:
    async with h.pool.acquire() as conn, conn.transaction():
        for event in events:
            await add_event(conn, h.topic, event)


async def test_outbox_events_are_published_and_consumed_once(harness: Harness) -> None:
    await _emit(harness, *(envelope(n) for n in range(5)))
    await harness.until(lambda: _count(harness, 5))
    assert sorted(await harness.seen()) == [0, 1, 2, 3, 4]
    assert await harness.pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0


async def test_relays_of_several_instances_take_turns(harness: Harness) -> None:
    # Two relays publishing disjoint batches at once could reorder one caregiver's events:
    # while one holds the relay lock (here: the test), every other relay publishes nothing.
    async with harness.pool.acquire() as holder, holder.transaction():
        await holder.execute("SELECT pg_advisory_xact_lock($1)", RELAY_LOCK)
        await _emit(harness, envelope(7))
        second_instance = OutboxRelay(harness.pool, None, harness.metrics)
        assert await second_instance.publish_batch() == 0
        await asyncio.sleep(0.6)  # the running relay's rounds (every 0.2 s) find the lock taken too
        assert await harness.pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 1
    await harness.until(lambda: _count(harness, 1))
    assert await harness.seen() == [7]


async def test_a_rolled_back_transaction_publishes_nothing(harness: Harness) -> None:
    with pytest.raises(RuntimeError):
        async with harness.pool.acquire() as conn, conn.transaction():
            await add_event(conn, harness.topic, envelope(99))
            raise RuntimeError("state change failed")
    await _emit(harness, envelope(1))
    await harness.until(lambda: _count(harness, 1))
    await asyncio.sleep(0.5)
    assert await harness.seen() == [1]


async def test_a_redelivered_event_is_handled_once(harness: Harness) -> None:
    event = envelope(7)
    for _ in range(3):
        await harness.publish_raw(event.model_dump_json().encode(), key=b"s1")
    await harness.until(lambda: _count(harness, 1))
    await harness.until(lambda: _metric_async(harness, "duplicate", 2))
    assert await harness.seen() == [7]


async def test_transient_failures_are_retried_then_succeed(harness: Harness) -> None:
    harness.fail_times[3] = 2
    await _emit(harness, envelope(3))
    await harness.until(lambda: _count(harness, 1))
    assert await harness.seen() == [3]  # the failed attempts' writes were rolled back
    assert harness.calls.count(3) == 3


async def test_persistent_failure_goes_to_the_dlq_and_the_next_event_flows(harness: Harness) -> None:
    harness.fail_times[4] = 100
    await _emit(harness, envelope(4), envelope(5))
    await harness.until(lambda: _count(harness, 1))
    assert await harness.seen() == [5]
    # Bounded: three attempts on its own, after at most one try in a batch with 5 (rolled back).
    assert 3 <= harness.calls.count(4) <= 4
    [record] = await harness.dead_letters(1)
    headers = {k: v.decode() for k, v in record.headers}
    assert headers["dlq_error"] == "transient failure for 4"
    assert headers["dlq_attempts"] == "3" and headers["dlq_origin_topic"] == harness.topic
    assert headers["event_type"] == "test.ping"  # original headers travel along
    row = await harness.pool.fetchrow("SELECT * FROM dead_letters")
    assert row["error_type"] == "RuntimeError" and row["attempts"] == 3


async def test_poison_records_go_to_the_dlq_without_retries(harness: Harness) -> None:
    await harness.publish_raw(b"\xff\xfe not json")
    bad_payload = envelope(1).model_dump(mode="json") | {"payload": {"n": "many"}}
    import json

    await harness.publish_raw(json.dumps(bad_payload).encode())
    # 9 has another key than -1 (8 would be parked behind it: see test_dead_letter_queue.py)
    await _emit(harness, envelope(-1), envelope(9))
    await harness.until(lambda: _count(harness, 1))
    records = await harness.dead_letters(3)
    errors = sorted({k: v.decode() for k, v in r.headers}["dlq_error"] for r in records)
    assert any("payload.n" in e for e in errors)
    assert any("negative ping -1" in e for e in errors)
    assert harness.calls.count(-1) == 1


async def test_events_of_other_types_are_skipped_by_their_header_unread(harness: Harness) -> None:
    # Not parsed at all: even a body that is no envelope is not this service's poison.
    await harness.publish_raw(b"\xff\xfe not json", headers={"event_type": "test.other"})
    await _emit(harness, envelope(4))
    await harness.until(lambda: _count(harness, 1))
    await harness.until(lambda: _metric_async(harness, "ignored", 1))
    assert await harness.pool.fetchval("SELECT count(*) FROM dead_letters") == 0


async def _count(h: Harness, n: int) -> bool:
    return len(await h.seen()) >= n


async def _metric_async(h: Harness, outcome: str, n: int) -> bool:
    return h.metrics.messages.labels(h.topic, outcome)._value.get() >= n
