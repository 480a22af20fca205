"""The municipalities service in a real PostgreSQL: pipeline events become waiting records
in the consumer's transaction, the release worker appends k-anonymous groups to the stream
table and the outbox and removes what it released or suppressed, erasure drops a person's
waiting records, nothing identifying is ever stored; sequence numbers are gap-free per
municipality under concurrent writers, SSE replays and resumes, webhooks are signed,
ordered and retried. (That the signals store no longer has municipality tables is
tests/integration/test_signals_migrations.py's.)"""

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
from services.municipalities import handlers, records
from services.municipalities.config import MunicipalitiesSettings
from services.municipalities.release import ReleaseWorker
from services.municipalities.repository import MunicipalStore
from services.municipalities.stream import WebhookDelivery, server_sent_events
from shared import webhooks
from shared.contracts import CaregiverErased, Envelope, SignalReceived, SignalScreened
from shared.db import create_pool, migrate
from shared.metrics import Metrics
from shared.retention import purge, shared_purges
from shared.service import Runtime

pytestmark = pytest.mark.integration

MIGRATIONS = REPO / "services" / "municipalities" / "migrations"
SECRET = "a-webhook-secret-of-some-length"


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    await migrate(database_url, MIGRATIONS)
    pool = await create_pool(database_url, size=25)
    try:
        yield pool
    finally:
        await pool.close()


def _runtime(pool: asyncpg.Pool, **settings: Any) -> Runtime[MunicipalitiesSettings]:
    runtime = Runtime(
        settings=MunicipalitiesSettings(**settings), broker=None, metrics=Metrics("municipalities"), consumer=None
    )
    runtime._pool = pool
    return runtime


async def _append(pool: asyncpg.Pool, code: str, n: int, at: datetime | None = None) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await MunicipalStore(conn).append_release(
            code, uuid4(), "2026-11", json.dumps({"n": n, "code": code}), at or datetime.now(UTC)
        )


async def test_sequence_numbers_are_gap_free_per_municipality_under_concurrent_writers(pool):
    await asyncio.gather(*(_append(pool, "GM0327" if n % 3 else "GM0307", n) for n in range(30)))
    for code, count in (("GM0327", 20), ("GM0307", 10)):
        rows = await MunicipalStore(pool).events_after(code, 0, 100)
        assert [r.seq for r in rows] == list(range(1, count + 1))
        assert {json.loads(r.body)["code"] for r in rows} == {code}


async def test_replay_starts_at_a_day_and_sse_resumes_after_the_cursor(pool):
    yesterday = datetime.now(UTC) - timedelta(days=1)
    await _append(pool, "GM0327", 0, yesterday)
    for n in range(1, 3):
        await _append(pool, "GM0327", n)
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    assert await MunicipalStore(pool).last_seq_before("GM0327", today) == 1
    assert await MunicipalStore(pool).last_seq_before("GM0327", today - timedelta(days=2)) == 0
    assert await MunicipalStore(pool).last_seq_before("GM0327", None) == 3
    stopping = asyncio.Event()
    stream = server_sent_events(pool, "GM0327", 1, poll_seconds=0.05, keepalive_seconds=0.2, stopping=stopping)
    chunks = [await anext(stream) for _ in range(4)]
    stopping.set()  # the service stops: the stream ends instead of holding the shutdown
    assert [chunk async for chunk in stream] == []
    assert chunks[0].startswith("retry:")
    assert [c.split("\n")[0] for c in chunks[1:3]] == ["id: 2", "id: 3"]
    assert chunks[1].split("\n")[1] == "event: records.released"
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
    runtime = _runtime(
        pool, webhook_allow_http_hosts=["127.0.0.1"], webhook_poll_seconds=0.05, webhook_backoff_seconds=0.3
    )
    async with Receiver(failures=2) as receiver:
        async with pool.acquire() as conn:
            hook = await MunicipalStore(conn).add_webhook("GM0327", f"http://127.0.0.1:{receiver.port}/hook", SECRET, 0)
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
    row = await pool.fetchrow(
        "SELECT delivered_seq, attempts, last_error FROM municipal_webhooks WHERE id = $1", hook.id
    )
    assert (row["delivered_seq"], row["attempts"], row["last_error"]) == (3, 0, None)


async def test_a_failing_webhook_records_its_error_and_waits(pool):
    await _append(pool, "GM0327", 1)
    runtime = _runtime(pool, webhook_allow_http_hosts=["127.0.0.1"], webhook_backoff_seconds=60)
    async with pool.acquire() as conn:
        # Nothing listens on this port.
        hook = await MunicipalStore(conn).add_webhook("GM0327", f"http://127.0.0.1:{free_port()}/hook", SECRET, 0)
    delivery = WebhookDelivery(runtime)
    await delivery.start()
    try:
        async with asyncio.timeout(10):
            while not await pool.fetchval("SELECT attempts FROM municipal_webhooks WHERE id = $1", hook.id):
                await asyncio.sleep(0.05)
        assert await delivery.deliver_due() == 0  # not due again yet
    finally:
        await delivery.stop()
    row = await pool.fetchrow("SELECT * FROM municipal_webhooks WHERE id = $1", hook.id)
    # The municipality sees that it failed, never why (a refused port would be a scan oracle).
    assert row["attempts"] == 1 and row["delivered_seq"] == 0 and row["last_error"] == webhooks.DELIVERY_FAILED
    assert row["next_attempt_at"] > datetime.now(UTC) + timedelta(seconds=50)


async def test_a_webhook_now_pointing_at_a_local_address_is_refused_at_delivery(pool):
    """Registration checked the URL; a later DNS answer (or an old row) pointing inside is
    refused again before every delivery: the receiver on this machine gets nothing."""
    await _append(pool, "GM0327", 1)
    runtime = _runtime(pool, webhook_backoff_seconds=60)  # no development hosts
    async with Receiver(failures=0) as receiver:
        async with pool.acquire() as conn:
            hook = await MunicipalStore(conn).add_webhook("GM0327", f"http://localhost:{receiver.port}/hook", SECRET, 0)
        delivery = WebhookDelivery(runtime)
        await delivery.start()
        try:
            async with asyncio.timeout(10):
                while not await pool.fetchval("SELECT attempts FROM municipal_webhooks WHERE id = $1", hook.id):
                    await asyncio.sleep(0.05)
        finally:
            await delivery.stop()
        assert receiver.received == []
    row = await pool.fetchrow("SELECT * FROM municipal_webhooks WHERE id = $1", hook.id)
    assert row["delivered_seq"] == 0 and row["last_error"] == webhooks.DELIVERY_FAILED


def _signal(name: str, postcode: str = "3833 KL", code: str = "GM0327") -> SignalReceived:
    return SignalReceived.model_validate(
        {
            "signal_id": uuid4(),
            "organisation_id": uuid4(),
            "organisation_name": "Thuiszorg Eemland",
            "received_at": datetime.now(UTC) - timedelta(hours=3),
            "source": {"kind": "home_care", "reference": "ECD-778899"},
            "caregiver": {
                "name": name,
                "email": f"{name.lower().replace(' ', '.')}@example.nl",
                "phone": "0687654321",
                "birth_year": 1948,
                "postcode": postcode,
                "municipality_code": code,
            },
            "note": "Meneer slaapt slecht sinds zijn vrouw achteruitging.",
        }
    )


def _screened(signal: SignalReceived, subject: str) -> Envelope[SignalScreened]:
    payload = SignalScreened(
        signal_id=signal.signal_id,
        case_id=uuid4(),
        screened_at=datetime.now(UTC),
        result={"risk_level": "at_risk", "needs": ["peer_contact"]},
        signal=signal,
    )
    return Envelope[SignalScreened](
        event_type="signal.screened",
        payload=payload,
        producer="screening",
        subject=subject,
        correlation_id=str(signal.signal_id),
    )


async def _dump(pool: asyncpg.Pool) -> str:
    tables = [r["tablename"] for r in await pool.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
    rows = [r["row"] for t in tables for r in await pool.fetch(f'SELECT to_jsonb(t)::text AS row FROM "{t}" t')]
    return "\n".join(rows)


async def test_events_wait_then_go_out_in_groups_or_are_suppressed_and_nothing_identifying_is_stored(pool):
    runtime = _runtime(pool, k=10, max_delay_seconds=60)
    worker = ReleaseWorker(runtime)
    similar = [(_signal(f"Bram Bakker {n}"), f"pseudonym-{n}") for n in range(12)]
    lonely = [(_signal(f"Eva Eemnes {n}", "3751 AB", "GM0313"), f"pseudonym-eva-{n}") for n in range(3)]
    unknown = (_signal("Uri Utrecht", "3511 AB", "GM0344"), "pseudonym-uri")
    handle = handlers.keeping(records.from_screened)
    for signal, subject in [*similar, *lonely, unknown]:
        async with pool.acquire() as conn, conn.transaction():
            await handle(conn, _screened(signal, subject))
    assert await pool.fetchval("SELECT count(*) FROM waiting_records") == 15  # not the unknown municipality
    async with pool.acquire() as conn, conn.transaction():  # one of the twelve is erased while waiting
        await handlers.on_erased(
            conn,
            Envelope[CaregiverErased](
                event_type="caregiver.erased",
                producer="signals",
                subject="pseudonym-11",
                correlation_id="e",
                payload=CaregiverErased(
                    erasure_id=uuid4(),
                    caregiver_pseudonym="pseudonym-11",
                    signal_ids=[],
                    requested_at=datetime.now(UTC),
                    requested_by=uuid4(),
                ),
            ),
        )
    assert await pool.fetchval("SELECT count(*) FROM waiting_records") == 14

    outcome = await worker.release_due(datetime.now(UTC))
    assert [(g.count, g.key.area) for g in outcome.released] == [(11, "WK032701")]
    rows = await MunicipalStore(pool).events_after("GM0327", 0, 10)
    outbox = await pool.fetch("SELECT topic, key, body FROM outbox ORDER BY id")
    assert [o["body"] for o in outbox] == [r.body for r in rows]
    assert [(o["topic"], o["key"]) for o in outbox] == [("municipality.GM0327.events.v1", "GM0327")]
    group = json.loads(rows[0].body)["payload"]
    assert (group["count"], group["age_band"], group["risk_level"], group["needs"]) == (
        11,
        "70-79",
        "at_risk",
        ["peer_contact"],
    )
    assert await pool.fetchval("SELECT count(*) FROM waiting_records") == 3  # the three wait

    later = await worker.release_due(datetime.now(UTC) + timedelta(seconds=61))
    assert not later.released and len(later.suppressed) == 3
    assert await pool.fetchval("SELECT count(*) FROM waiting_records") == 0
    assert await MunicipalStore(pool).events_after("GM0313", 0, 10) == []
    registry = runtime.metrics.registry
    assert registry.get_sample_value("sts_municipal_records_total", {"fate": "released"}) == 11
    assert registry.get_sample_value("sts_municipal_records_total", {"fate": "suppressed"}) == 3

    dump = await _dump(pool)
    for value in (
        "Bram",
        "Eva",
        "example.nl",
        "0687654321",
        "3833",
        "3751",
        "1948",
        "ECD-778899",
        "slaapt",
        "pseudonym-",
        *(str(s.signal_id) for s, _ in [*similar, *lonely, unknown]),
    ):
        assert value not in dump, value


async def test_old_inbox_rows_are_purged_by_the_shared_retention_job(pool):
    await pool.execute(
        """INSERT INTO inbox (event_id, consumer, topic, event_type, processed_at)
                          VALUES ($1, 'municipalities', 't', 'x', now() - interval '3 days'),
                                 ($2, 'municipalities', 't', 'x', now())""",
        uuid4(),
        uuid4(),
    )
    await purge(pool, shared_purges(MunicipalitiesSettings()))
    assert await pool.fetchval("SELECT count(*) FROM inbox") == 1
