"""The consumer under faults, against a real PostgreSQL and a real Kafka-compatible broker:
outages are waited out (never dead-lettered), a persistent failure is dead-lettered after
its window and before its offset is committed, later events of its key are parked behind
it and replayed after it in order, the relay re-listens after a database restart, and an
event about an erased caregiver is dropped."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import BaseModel

from deploy.stack import EmbeddedPostgres, create_databases, free_port
from shared import cli
from shared.config import KafkaSettings
from shared.consumer import ConsumerSettings, EventConsumer
from shared.contracts import Envelope, Topics
from shared.db import SHARED_MIGRATIONS, apply_migrations, create_pool
from shared.kafka import create_broker, ensure_topics, with_dlqs
from shared.metrics import Metrics
from shared.outbox import OutboxRelay, add_event, new_event
from shared.tombstones import record_tombstone

pytestmark = pytest.mark.integration


class Item(BaseModel):
    n: int
    signal_id: uuid.UUID | None = None


@dataclass
class Rig:
    """One consumer (group ``group``) on a fresh topic, with its relay, over ``pool``."""

    pool: asyncpg.Pool
    topic: str
    group: str
    bootstrap: str
    metrics: Metrics
    relay: OutboxRelay
    consumer: EventConsumer
    failing: set[int] = field(default_factory=set)
    outage_until: float = 0.0  # the handler meets "connection reset" until then
    calls: list[tuple[int, float]] = field(default_factory=list)
    delay: float = 0.0

    async def emit(self, *items: tuple[int, str] | tuple[int, str, uuid.UUID]) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            for n, subject, *signal_id in items:
                event = new_event(
                    "test.item",
                    Item(n=n, signal_id=signal_id[0] if signal_id else None),
                    producer="test",
                    subject=subject,
                    correlation_id=f"c{n}",
                )
                await add_event(conn, self.topic, event)

    async def seen(self) -> list[int]:
        return [r["n"] for r in await self.pool.fetch("SELECT n FROM seen ORDER BY id")]

    async def until(self, predicate, timeout: float = 30) -> None:
        async with asyncio.timeout(timeout):
            while not await predicate():
                await asyncio.sleep(0.05)

    def outcome(self, outcome: str) -> float:
        return self.metrics.messages.labels(self.topic, outcome)._value.get()

    def failures(self, kind: str) -> float:
        return sum(
            s.value
            for m in self.metrics.failures.collect()
            for s in m.samples
            if s.name.endswith("_total") and s.labels.get("kind") == kind
        )

    async def committed(self, partition: int) -> int | None:
        reader = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=f"{self.group}.{self.topic}", enable_auto_commit=False
        )
        await reader.start()
        try:
            return await reader.committed(TopicPartition(self.topic, partition))
        finally:
            await reader.stop()


@contextlib.asynccontextmanager
async def consumer_rig(
    database_url: str,
    kafka: Any,
    *,
    poll_seconds: float = 0.2,
    topic: str | None = None,
    group: str | None = None,
    **settings: Any,
) -> AsyncIterator[Rig]:
    conn = await asyncpg.connect(database_url)
    await apply_migrations(conn, {"shared": SHARED_MIGRATIONS})
    await conn.execute("CREATE TABLE IF NOT EXISTS seen (id serial PRIMARY KEY, n int NOT NULL)")
    await conn.close()
    pool = await create_pool(database_url, size=5, acquire_timeout=2)
    topic = topic or f"test.{uuid.uuid4().hex[:8]}.v1"
    kafka_settings = KafkaSettings(bootstrap_servers=kafka.bootstrap, idempotence=kafka.idempotence, partitions=2)
    await ensure_topics(kafka_settings, with_dlqs([topic]))
    broker = create_broker(kafka_settings, client_id="test", graceful_timeout=5)
    metrics = Metrics("test")
    group = group or f"g-{uuid.uuid4().hex[:6]}"
    relay = OutboxRelay(pool, broker, metrics, poll_seconds=poll_seconds)
    consumer = EventConsumer(
        broker,
        lambda: pool,
        metrics,
        ConsumerSettings(group_id=group, max_attempts=2, backoff_seconds=0.05, max_backoff_seconds=0.5, **settings),
        payloads={"test.item": Item},
    )
    rig = Rig(pool, topic, group, kafka.bootstrap, metrics, relay, consumer)

    async def handle(conn: asyncpg.Connection, event: Envelope[Item]) -> None:
        rig.calls.append((event.payload.n, time.monotonic()))
        if rig.delay:
            await asyncio.sleep(rig.delay)
        if time.monotonic() < rig.outage_until:
            raise ConnectionResetError("connection reset by peer")
        await conn.execute("INSERT INTO seen (n) VALUES ($1)", event.payload.n)
        if event.payload.n in rig.failing:
            raise RuntimeError(f"cannot handle {event.payload.n}")

    consumer.subscribe({topic: {"test.item": handle}})
    await broker.start()
    await relay.start()
    try:
        yield rig
    finally:
        consumer.stop()
        await relay.stop()
        await broker.stop()
        await pool.close()


async def test_a_persistent_failure_is_dead_lettered_after_its_window_and_its_key_waits(
    database_url: str,
    kafka: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    window = 1.5
    async with consumer_rig(database_url, kafka, dead_letter_after_seconds=window) as rig:
        rig.failing.add(1)
        await rig.emit((1, "alice"), (2, "alice"), (3, "bob"), (4, "alice"))
        await rig.until(lambda: _count(rig, "SELECT count(*) FROM dead_letters WHERE status = 'parked'", 2))
        await rig.until(lambda: _has(rig, 3))

        rows = await rig.pool.fetch("SELECT * FROM dead_letters ORDER BY id")
        assert [(r["status"], json.loads(bytes(r["body"]))["payload"]["n"]) for r in rows] == [
            ("dead", 1),
            ("parked", 2),
            ("parked", 4),
        ]
        dead = rows[0]
        assert dead["key"] == "alice" and dead["error_type"] == "RuntimeError" and dead["attempts"] >= 2
        assert dead["headers"]["event_type"] == "test.item"
        attempts_at = [t for n, t in rig.calls if n == 1]
        assert attempts_at[-1] - attempts_at[0] >= window  # retried through the window first
        assert await rig.seen() == [3]  # the failed attempts rolled back; alice's later events wait
        assert [n for n, _ in rig.calls].count(2) == 0

        # The DLQ copy is published by the relay, with the origin in its headers.
        [copy] = await _read(rig.bootstrap, Topics.dlq(rig.topic), 1)
        headers = {k: v.decode() for k, v in copy.headers}
        assert headers["dlq_error"] == "cannot handle 1" and headers["dlq_origin_topic"] == rig.topic
        assert headers["dlq_consumer_group"] == f"{rig.group}.{rig.topic}" and headers["dlq_attempts"] == str(
            dead["attempts"]
        )
        assert copy.key == b"alice" and json.loads(copy.value)["event_id"] == dead["event_id"]

        # The operator sees the dead letter with its parked followers, and the record in full.
        monkeypatch.setenv("MATCHING_DATABASE_URL", database_url)
        assert await cli.TOOL.run(cli.TOOL.parser.parse_args(["--service", "matching", "dead-letters", "list"])) == 0
        out = capsys.readouterr().out.splitlines()  # the services' logs share stdout here
        listing = out[next(i for i, line in enumerate(out) if line.startswith("id  status")) :]
        assert listing[0].split()[:3] == ["id", "status", "created_at"]
        rows = [line for line in listing[1:] if line.split()[0].isdigit()]
        assert [line.split()[1] for line in rows] == ["dead", "parked", "parked"]
        assert "cannot handle 1" in rows[0]
        assert (
            await cli.TOOL.run(
                cli.TOOL.parser.parse_args(["--service", "matching", "dead-letters", "show", str(dead["id"])])
            )
            == 0
        )
        shown_out = capsys.readouterr().out
        shown = json.loads(shown_out[shown_out.index("{\n") :])
        assert shown["status"] == "dead" and json.loads(shown["body"])["payload"]["n"] == 1

        # The operator fixes the cause and replays: the dead letter, then its followers, in order.
        rig.failing.clear()
        args = cli.TOOL.parser.parse_args(["--service", "matching", "dead-letters", "replay", str(dead["id"])])
        assert await cli.TOOL.run(args) == 0
        await rig.until(lambda: _has(rig, 3, 1, 2, 4))
        assert await rig.seen() == [3, 1, 2, 4]
        statuses = await rig.pool.fetch("SELECT status, resolved_at FROM dead_letters ORDER BY id")
        assert all(r["status"] == "replayed" and r["resolved_at"] for r in statuses)

        # A later event of the key flows again, and nothing was handled twice.
        await rig.emit((5, "alice"))
        await rig.until(lambda: _has(rig, 3, 1, 2, 4, 5))
        assert rig.outcome("parked") == 2 and rig.outcome("dead_lettered") == 1

        await rig.consumer.update_lag()
        lag = {s.labels["partition"]: s.value for m in rig.metrics.lag.collect() for s in m.samples}
        assert set(lag) <= {"0", "1"} and lag and all(v == 0 for v in lag.values())
        ok, health = rig.consumer.health()
        assert ok and health[rig.topic]["lanes_alive"] == 1 and health[rig.topic]["waiting_on_dependency"] == []


async def test_a_replayed_event_that_fails_again_is_dead_again_with_its_followers_parked(
    database_url: str,
    kafka: Any,
) -> None:
    async with consumer_rig(database_url, kafka, dead_letter_after_seconds=0) as rig:
        rig.failing.add(1)
        await rig.emit((1, "carol"), (2, "carol"))
        await rig.until(lambda: _count(rig, "SELECT count(*) FROM dead_letters WHERE status = 'parked'", 1))
        async with rig.pool.acquire() as conn, conn.transaction():
            from shared.dead_letters import replay_all

            assert len(await replay_all(conn, topic=rig.topic)) == 2
        await rig.until(lambda: _count(rig, "SELECT count(*) FROM dead_letters WHERE attempts >= 4", 1))
        await rig.until(lambda: _count(rig, "SELECT count(*) FROM dead_letters WHERE status = 'parked'", 1))
        assert [r["status"] for r in await rig.pool.fetch("SELECT status FROM dead_letters ORDER BY id")] == [
            "dead",
            "parked",
        ]
        assert await rig.seen() == []


async def test_the_dead_letter_is_recorded_before_the_offset_is_committed(database_url: str, kafka: Any) -> None:
    async with consumer_rig(database_url, kafka, dead_letter_after_seconds=0) as rig:
        rig.failing.add(7)
        blocker = await asyncpg.connect(database_url)
        try:
            # Block writes to the dead-letter table (reads go on): recording the dead letter
            # has to wait, and so must the offset.
            tx = blocker.transaction()
            await tx.start()
            await blocker.execute("LOCK TABLE dead_letters IN SHARE MODE")
            await rig.emit((7, "dave"))
            await rig.until(lambda: _calls(rig, 7, 2))
            await asyncio.sleep(1.5)
            assert [await rig.committed(p) for p in (0, 1)] == [None, None]
            assert await rig.pool.fetchval("SELECT count(*) FROM dead_letters") == 0
            await tx.rollback()
        finally:
            await blocker.close()
        await rig.until(lambda: _count(rig, "SELECT count(*) FROM dead_letters WHERE status = 'dead'", 1))
        row = await rig.pool.fetchrow('SELECT partition, "offset" FROM dead_letters')
        async with asyncio.timeout(20):
            while await rig.committed(row["partition"]) != row["offset"] + 1:
                await asyncio.sleep(0.1)


async def test_an_event_about_an_erased_caregiver_is_dropped_but_a_new_signal_flows(
    database_url: str,
    kafka: Any,
) -> None:
    erased_signal, new_signal = uuid.uuid4(), uuid.uuid4()
    async with consumer_rig(database_url, kafka) as rig:
        async with rig.pool.acquire() as conn, conn.transaction():
            await record_tombstone(conn, "erin", [erased_signal], [])
        await rig.emit((1, "erin", erased_signal), (2, "erin", new_signal), (3, "frank", erased_signal))
        await rig.until(lambda: _has_count(rig, 2))
        await rig.until(lambda: _metric(rig, "erased", 1))
        assert sorted(await rig.seen()) == [2, 3]


@pytest.fixture(scope="module")
def own_postgres(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A PostgreSQL of this module's own, to stop and start (not the session's)."""
    server = EmbeddedPostgres(Path(tmp_path_factory.mktemp("pg-outage")) / "data", free_port(), durable=False)
    server.start()
    create_databases(server.dsn(), ["outage"])
    try:
        yield server
    finally:
        server.stop()


async def test_a_database_outage_is_waited_out_and_the_relay_listens_again(own_postgres: Any, kafka: Any) -> None:
    # Polling every minute: after the restart only a re-opened LISTEN can wake the relay fast.
    # Batches of 5 at 0.1 s an event: the outage meets a batch in flight, and later ones.
    async with consumer_rig(
        own_postgres.dsn("outage"), kafka, poll_seconds=60, dead_letter_after_seconds=0, batch_size=5
    ) as rig:
        rig.delay = 0.1
        await rig.emit(*((n, f"p{n % 4}") for n in range(20)))
        await rig.until(lambda: _has_count(rig, 5))
        await asyncio.to_thread(own_postgres.stop)
        await asyncio.sleep(6)
        await asyncio.to_thread(own_postgres.start)
        await rig.until(lambda: _has_count(rig, 20), timeout=60)
        assert sorted(await rig.seen()) == list(range(20))  # each once
        assert await rig.pool.fetchval("SELECT count(*) FROM dead_letters") == 0
        assert rig.failures("infrastructure") > 0  # the outage was met, and waited out
        assert rig.outcome("dead_lettered") == 0

        await rig.emit((100, "p0"))
        await rig.until(lambda: _has_count(rig, 21), timeout=20)
        assert rig.relay.heartbeat.alive()


async def test_a_lane_that_holds_a_record_past_the_poll_interval_loses_nothing(
    database_url: str,
    kafka: Any,
) -> None:
    # The lane is taken out of its group while it waits; the record it holds is delivered
    # again to the lane that takes over the partition, and the inbox dedupes the two.
    async with consumer_rig(database_url, kafka, max_poll_interval_ms=2000, dead_letter_after_seconds=0) as rig:
        rig.outage_until = time.monotonic() + 3600
        await rig.emit(*((n, "gina") for n in range(10)))
        await rig.until(lambda: _calls(rig, 0, 1))
        await asyncio.sleep(8)  # four poll intervals
        rig.outage_until = 0
        await rig.until(lambda: _has_count(rig, 10), timeout=60)
        await asyncio.sleep(2)
        assert await rig.seen() == list(range(10))  # once each, in order
        assert await rig.pool.fetchval("SELECT count(*) FROM dead_letters") == 0
        row = await rig.pool.fetchval("SELECT count(*) FROM inbox")
        assert row == 10


async def test_a_record_held_during_an_outage_is_let_go_uncommitted_on_shutdown(
    database_url: str,
    kafka: Any,
) -> None:
    topic, group = f"test.{uuid.uuid4().hex[:8]}.v1", f"g-{uuid.uuid4().hex[:6]}"
    async with consumer_rig(database_url, kafka, topic=topic, group=group) as rig:
        rig.outage_until = time.monotonic() + 3600
        await rig.emit((1, "hank"))
        await rig.until(lambda: _calls(rig, 1, 2))
        assert rig.consumer.health()[1][topic]["waiting_on_dependency"]
    # Stopped while waiting: nothing handled, nothing committed ...
    assert [await rig.committed(p) for p in (0, 1)] == [None, None]
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM seen") == 0
    finally:
        await conn.close()
    # ... so the next run of the service is delivered the record and handles it.
    async with consumer_rig(database_url, kafka, topic=topic, group=group) as again:
        await again.until(lambda: _has(again, 1))
        assert again.calls and again.outcome("processed") == 1


async def _read(bootstrap: str, topic: str, count: int) -> list[Any]:
    reader = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=f"r-{uuid.uuid4()}"
    )
    await reader.start()
    records: list[Any] = []
    try:
        async with asyncio.timeout(20):
            while len(records) < count:
                records.append(await reader.getone())
    finally:
        await reader.stop()
    return records


async def _count(rig: Rig, sql: str, n: int) -> bool:
    return await rig.pool.fetchval(sql) >= n


async def _has(rig: Rig, *ns: int) -> bool:
    return await rig.seen() == list(ns)


async def _has_count(rig: Rig, n: int) -> bool:
    with contextlib.suppress(Exception):
        return len(await rig.seen()) >= n
    return False


async def _calls(rig: Rig, n: int, times: int) -> bool:
    return [c for c, _ in rig.calls].count(n) >= times


async def _metric(rig: Rig, outcome: str, n: int) -> bool:
    return rig.outcome(outcome) >= n


async def test_replay_keeps_a_key_in_order_across_two_dead_letters(database_url: str, kafka: Any) -> None:
    from aiokafka import AIOKafkaProducer

    from shared.dead_letters import ReplayError, replay

    async with consumer_rig(database_url, kafka, dead_letter_after_seconds=0) as rig:
        rig.failing.add(1)
        await rig.emit((1, "ivy"), (2, "ivy"))
        await rig.until(lambda: _count(rig, "SELECT count(*) FROM dead_letters", 2))
        # An invalid payload is dead-lettered at once, even behind the key's dead letter ...
        invalid = new_event("test.item", Item(n=3), producer="test", subject="ivy", correlation_id="c3")
        producer = AIOKafkaProducer(bootstrap_servers=rig.bootstrap)
        await producer.start()
        try:
            body = invalid.model_dump(mode="json") | {"payload": {"n": "three"}}
            await producer.send_and_wait(rig.topic, json.dumps(body).encode(), key=b"ivy")
        finally:
            await producer.stop()
        await rig.until(lambda: _count(rig, "SELECT count(*) FROM dead_letters WHERE status = 'dead'", 2))
        await rig.emit((4, "ivy"))  # ... and what follows waits behind both
        await rig.until(lambda: _count(rig, "SELECT count(*) FROM dead_letters WHERE status = 'parked'", 2))
        first, parked_2, second, parked_4 = [
            r["id"] for r in await rig.pool.fetch("SELECT id FROM dead_letters ORDER BY id")
        ]

        async with rig.pool.acquire() as conn, conn.transaction():
            with pytest.raises(ReplayError, match=f"dead letter {first} of the same key comes first"):
                await replay(conn, second)
        rig.failing.clear()
        async with rig.pool.acquire() as conn, conn.transaction():
            assert await replay(conn, first) == [first, parked_2]  # not 4: it waits behind the second
        await rig.until(lambda: _has(rig, 1, 2))
        statuses = dict(await rig.pool.fetch("SELECT id, status FROM dead_letters"))
        assert statuses == {first: "replayed", parked_2: "replayed", second: "dead", parked_4: "parked"}
        await asyncio.sleep(1)
        assert await rig.seen() == [1, 2]


async def test_a_batch_commits_as_one_and_a_failing_event_in_it_costs_its_neighbours_nothing(
    database_url: str,
    kafka: Any,
) -> None:
    async with consumer_rig(database_url, kafka, dead_letter_after_seconds=0) as rig:
        # One poll's events share one transaction: their inbox rows have one writer (xmin).
        await rig.emit(*((n, f"p{n}") for n in range(40)))
        await rig.until(lambda: _has_count(rig, 40))
        transactions = await rig.pool.fetchval("SELECT count(DISTINCT xmin::text) FROM inbox")
        assert transactions < 40

        # 52 fails in the middle of its batch: the batch is rolled back, its events are handled
        # again one at a time, and only 52 is dead-lettered; each neighbour is seen once.
        rig.failing.add(52)
        await rig.emit(*((n, f"q{n}") for n in range(50, 56)))
        await rig.until(lambda: _count(rig, "SELECT count(*) FROM dead_letters", 1))
        await rig.until(lambda: _has_count(rig, 45))
        assert sorted(await rig.seen()) == [*range(40), 50, 51, 53, 54, 55]
        assert [n for n, _ in rig.calls].count(50) in (1, 2)  # in the batch, then on its own
        assert rig.outcome("dead_lettered") == 1 and rig.outcome("processed") == 45


async def test_a_batch_checks_the_tombstones_and_dead_letter_queues_of_all_its_events_at_once(
    database_url: str,
    kafka: Any,
) -> None:
    erased_signal = uuid.uuid4()
    async with consumer_rig(database_url, kafka, dead_letter_after_seconds=0) as rig:
        async with rig.pool.acquire() as conn, conn.transaction():
            await record_tombstone(conn, "erin", [erased_signal], [])
        rig.failing.add(1)
        await rig.emit((1, "kim"))
        await rig.until(lambda: _count(rig, "SELECT count(*) FROM dead_letters", 1))

        # One burst, read in batches: kim's next event waits behind kim's dead letter, the
        # event about erin's erased signal is dropped, her new signal and the rest flow.
        burst = [(n, f"s{n}") for n in range(10, 40)]
        await rig.emit(*burst[:15], (2, "kim"), (3, "erin", erased_signal), (4, "erin", uuid.uuid4()), *burst[15:])
        await rig.until(lambda: _has_count(rig, 31))
        await rig.until(lambda: _metric(rig, "parked", 1))
        assert sorted(await rig.seen()) == [4, *range(10, 40)]
        assert rig.outcome("erased") == 1 and rig.outcome("parked") == 1
        assert await rig.pool.fetchval("SELECT count(DISTINCT xmin::text) FROM inbox") < 31, "read in batches"
