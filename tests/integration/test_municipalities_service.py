"""The municipalities' stream in a real PostgreSQL (and broker): every stage becomes an
anonymised event in the stream table and the outbox, sequence numbers are gap-free per
municipality even under concurrent writers, replay starts at whole weeks, webhooks are
signed, ordered and retried, and erasure leaves anonymous facts only."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import asyncpg
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from deploy.stack import REPO, free_port
from services.signals import repository as signals_repository
from services.signals.config import SignalsSettings
from services.signals.municipalities import repository
from services.signals.municipalities.anonymise import week_start
from services.signals.municipalities.erasure import erase_caregivers
from services.signals.municipalities.publisher import MunicipalPublisher
from services.signals.municipalities.stream import WebhookDelivery, server_sent_events
from shared.config import KafkaSettings
from shared.db import create_pool, migrate
from shared.service import Runtime

pytestmark = pytest.mark.integration

MIGRATIONS = REPO / "services" / "signals" / "migrations"
SECRET = "a-webhook-secret-of-some-length"


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    await migrate(database_url, MIGRATIONS)
    pool = await create_pool(database_url, size=25)
    try:
        yield pool
    finally:
        await pool.close()


def _runtime(pool: asyncpg.Pool, **settings: Any) -> Runtime:
    runtime = Runtime(settings=SignalsSettings(**settings), broker=None, metrics=None, consumer=None)  # type: ignore[arg-type]
    runtime._pool = pool
    return runtime


async def _append(pool: asyncpg.Pool, code: str, n: int) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await repository.append_event(conn, code, uuid4(), "signal.received", json.dumps({"n": n, "code": code}))


async def test_sequence_numbers_are_gap_free_per_municipality_under_concurrent_writers(pool):
    await asyncio.gather(*(_append(pool, "GM0327" if n % 3 else "GM0307", n) for n in range(30)))
    for code, count in (("GM0327", 20), ("GM0307", 10)):
        rows = await repository.events_after(pool, code, 0, 100)
        assert [r["seq"] for r in rows] == list(range(1, count + 1))
        assert {json.loads(r["body"])["code"] for r in rows} == {code}


async def test_replay_starts_at_whole_weeks_and_sse_resumes_after_the_cursor(pool):
    for n in range(3):
        await _append(pool, "GM0327", n)
    last_week = datetime.now(UTC) - timedelta(days=7)
    await pool.execute("UPDATE municipal_events SET created_at = $1 WHERE seq = 1", last_week)
    # Any moment in this week replays from its Monday: the old event stays out, no matter
    # how close to the new ones the moment is.
    assert await repository.last_seq_before(pool, "GM0327", week_start(datetime.now(UTC))) == 1
    assert await repository.last_seq_before(pool, "GM0327", week_start(last_week)) == 0
    assert await repository.last_seq_before(pool, "GM0327", None) == 3
    stopping = asyncio.Event()
    stream = server_sent_events(pool, "GM0327", 1, poll_seconds=0.05, keepalive_seconds=0.2, stopping=stopping)
    chunks = [await anext(stream) for _ in range(4)]
    stopping.set()  # the service stops: the stream ends instead of holding the shutdown
    assert [chunk async for chunk in stream] == []
    assert chunks[0].startswith("retry:")
    assert [c.split("\n")[0] for c in chunks[1:3]] == ["id: 2", "id: 3"]
    assert chunks[1].split("\n")[1] == "event: signal.received"
    assert chunks[3] == ": keep-alive\n\n"


class Receiver:
    """A webhook endpoint on this machine that fails its first ``failures`` requests."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.received: list[tuple[dict[str, str], str, float]] = []
        self.port = free_port()

    async def handle(self, request: Request) -> Response:
        body = (await request.body()).decode()
        self.received.append((dict(request.headers), body, time.monotonic()))
        if len(self.received) <= self.failures:
            return Response(status_code=503)
        return Response(status_code=204)

    async def __aenter__(self) -> Receiver:
        app = Starlette(routes=[Route("/hook", self.handle, methods=["POST"])])
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_config=None))
        self.task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            await asyncio.sleep(0.01)
        return self

    async def __aexit__(self, *_: Any) -> None:
        self.server.should_exit = True
        await self.task


async def test_webhooks_are_signed_ordered_and_retried_with_backoff(pool):
    for n in range(3):
        await _append(pool, "GM0327", n)
    await _append(pool, "GM0307", 99)
    runtime = _runtime(pool, webhook_allow_http=True, webhook_poll_seconds=0.05, webhook_backoff_seconds=0.3)
    async with Receiver(failures=2) as receiver:
        async with pool.acquire() as conn:
            hook = await repository.add_webhook(conn, "GM0327", f"http://127.0.0.1:{receiver.port}/hook", SECRET, 0)
        delivery = WebhookDelivery(runtime)
        await delivery.start()
        try:
            async with asyncio.timeout(15):
                while len(receiver.received) < 5:
                    await asyncio.sleep(0.05)
        finally:
            await delivery.stop()
    seqs = [headers["x-event-seq"] for headers, _, _ in receiver.received]
    assert seqs == ["1", "1", "1", "2", "3"]  # the first event until it is taken, then the rest in order
    first_retry, second_retry = (receiver.received[k][2] - receiver.received[k - 1][2] for k in (1, 2))
    assert first_retry >= 0.25 and second_retry >= 0.55  # 0.3 s, then doubled
    for headers, body, _ in receiver.received:
        assert json.loads(body)["code"] == "GM0327"
        t, v1 = (part.split("=", 1)[1] for part in headers["x-signature"].split(","))
        assert v1 == hmac.new(SECRET.encode(), f"{t}.{body}".encode(), hashlib.sha256).hexdigest()
        assert abs(int(t) - time.time()) < 60
    row = await pool.fetchrow("SELECT delivered_seq, attempts, last_error FROM municipal_webhooks WHERE id = $1",
                              hook["id"])
    assert (row["delivered_seq"], row["attempts"], row["last_error"]) == (3, 0, None)


async def test_a_failing_webhook_records_its_error_and_waits(pool):
    await _append(pool, "GM0327", 1)
    runtime = _runtime(pool, webhook_allow_http=True, webhook_backoff_seconds=60)
    async with pool.acquire() as conn:
        # Nothing listens on this port.
        hook = await repository.add_webhook(conn, "GM0327", f"http://127.0.0.1:{free_port()}/hook", SECRET, 0)
    delivery = WebhookDelivery(runtime)
    await delivery.start()
    try:
        async with asyncio.timeout(10):
            while not await pool.fetchval("SELECT attempts FROM municipal_webhooks WHERE id = $1", hook["id"]):
                await asyncio.sleep(0.05)
        assert await delivery.deliver_due() == 0  # not due again yet
    finally:
        await delivery.stop()
    row = await pool.fetchrow("SELECT * FROM municipal_webhooks WHERE id = $1", hook["id"])
    assert row["attempts"] == 1 and row["delivered_seq"] == 0 and "ConnectError" in row["last_error"]
    assert row["next_attempt_at"] > datetime.now(UTC) + timedelta(seconds=50)


SIGNAL_BODY = {
    "source": {"kind": "home_care", "reference": "ECD-778899"},
    "caregiver": {"name": "Bram Bakker", "email": "bram@example.nl", "phone": "0687654321",
                  "birth_year": 1948, "postcode": "3833 KL", "municipality_code": "GM0327"},
    "note": "Meneer slaapt slecht sinds zijn vrouw achteruitging.",
}


async def test_stages_become_anonymised_events_and_erasure_keeps_only_anonymous_facts(pool, kafka):
    publisher = MunicipalPublisher(SignalsSettings(kafka=KafkaSettings(bootstrap_servers=kafka.bootstrap)))
    received = datetime.now(UTC) - timedelta(hours=3)
    signal_id, organisation = uuid4(), uuid4()
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("INSERT INTO organisations (id, name, kind) VALUES ($1, 'Thuiszorg', 'home_care')",
                           organisation)
        await signals_repository.claim_idempotency_key(conn, organisation, "key-1", "hash", signal_id)
        await signals_repository.insert_signal(
            conn, signal_id=signal_id, organisation_id=organisation, pseudonym="caregiver-pseudonym",
            municipality_code="GM0327", source_kind="home_care", urgency="normal", received_at=received,
            body=SIGNAL_BODY, event_id=uuid4())
        await publisher.record(conn, signal_id, "received", received, {})
    for stage, detail in [("screened", {"result": {"risk_level": "at_risk", "needs": ["peer_contact"]}}),
                          ("matched", {"matches": [{"category": "peer_contact", "service_name": "Bram's club"}]})]:
        async with pool.acquire() as conn, conn.transaction():
            await signals_repository.add_stage(conn, signal_id, stage, datetime.now(UTC), uuid4(), detail)
            await publisher.record(conn, signal_id, stage, datetime.now(UTC), detail)

    events = await repository.events_after(pool, "GM0327", 0, 10)
    outbox = await pool.fetch("SELECT topic, key, body FROM outbox ORDER BY id")
    assert [e["event_type"] for e in events] == ["signal.received", "signal.screened", "matches.proposed"]
    assert [o["body"] for o in outbox] == [e["body"] for e in events]
    assert {o["topic"] for o in outbox} == {"municipality.GM0327.events.v1"}
    envelopes = [json.loads(e["body"]) for e in events]
    assert len({e["subject"] for e in envelopes}) == 1 and len({e["correlation_id"] for e in envelopes}) == 1
    assert {e["occurred_at"] for e in envelopes} == {week_start(received).isoformat().replace("+00:00", "Z")}
    last = envelopes[-1]["payload"]
    assert last["area"] == {"kind": "wijk", "code": "WK032701"} and last["age_band"] == "70-79"
    assert last["risk_level"] == "at_risk" and last["service_categories"] == ["peer_contact"]
    assert 2.9 <= last["hours_to_match"] <= 3.1

    async with pool.acquire() as conn, conn.transaction():
        erased = await erase_caregivers(conn, erasure_id=uuid4(), organisation_id=organisation,
                                        pseudonyms=["caregiver-pseudonym"], requested_at=datetime.now(UTC),
                                        producer="signals")
    assert erased == 1
    dump = await _dump(pool)
    for value in ("Bram", "bram@example.nl", "0687654321", "3833", "ECD-778899", "slaapt slecht", str(signal_id)):
        found = [table for table, text in dump if value in text and table != "outbox"]
        assert not found, (value, found)
    assert await pool.fetchval("SELECT count(*) FROM stream_salts") == 0
    facts = await pool.fetchrow("SELECT * FROM signal_facts")
    assert facts["signal_id"] is None and facts["risk_level"] == "at_risk" and facts["area_code"] == "WK032701"
    erasure_events = await pool.fetch("SELECT body FROM outbox WHERE topic = 'signals.received.v1'")
    assert [json.loads(r["body"])["payload"]["signal_ids"] for r in erasure_events] == [[str(signal_id)]]


async def _dump(pool: asyncpg.Pool) -> list[tuple[str, str]]:
    tables = [r["tablename"] for r in await pool.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
    return [(t, "\n".join(r["row"] for r in await pool.fetch(f'SELECT to_jsonb(t)::text AS row FROM "{t}" t')))
            for t in tables]
