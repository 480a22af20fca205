"""Admission control of the ingest API against a real PostgreSQL that is stopped and
started (its own, not the session's): during the outage POST /v1/signals answers 503 with
Retry-After and a readable error, never 500; the client's retry with the same
Idempotency-Key afterwards is accepted once."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from deploy.stack import REPO, EmbeddedPostgres, create_databases, free_port
from services.signals.api import create_app
from services.signals.config import SignalsSettings
from services.signals.repository import SignalsRepository
from shared import auth
from shared.config import KafkaSettings

pytestmark = pytest.mark.integration

API_KEY = "admission-test-key"


@pytest.fixture
def own_postgres(tmp_path: Path) -> Any:
    server = EmbeddedPostgres(tmp_path / "data", free_port(), durable=False)
    server.start()
    create_databases(server.dsn(), ["signals"])
    try:
        yield server
    finally:
        server.stop()


async def test_ingest_answers_503_during_a_database_outage_and_a_retry_is_accepted_once(
    own_postgres: Any,
    kafka: Any,
) -> None:
    settings = SignalsSettings(
        database_url=own_postgres.dsn("signals"),
        database_acquire_timeout_seconds=2,
        kafka=KafkaSettings(bootstrap_servers=kafka.bootstrap, idempotence=kafka.idempotence, partitions=2),
    )
    app = create_app(settings)
    signal = json.loads((REPO / "deploy" / "demo" / "signal.json").read_text())
    signal["caregiver"]["name"] = f"Mantelzorger {uuid.uuid4().hex[:8]}"
    headers = {"Authorization": f"Bearer {API_KEY}", "Idempotency-Key": f"retry-{uuid.uuid4()}"}
    async with app.router.lifespan_context(app):
        async with app.state.runtime.pool.acquire() as conn:
            organisation = await SignalsRepository(conn).upsert_organisation("Admission test practice", "gp")
            await auth.issue(conn, key=API_KEY, scopes=auth.PARTNER_SCOPES, subject=str(organisation))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://signals") as client:
            health = await client.get("/healthz")
            assert health.status_code == 200, health.text
            body = health.json()
            assert body["database"] == body["broker"] == "up"
            assert all(t["lanes_alive"] == t["lanes"] for t in body["consumers"].values())
            assert body["loops"]["outbox-relay"]["alive"]
            metrics = (await client.get("/metrics")).text
            assert "sts_outbox_oldest_pending_age_seconds" in metrics and "sts_consumer_waiting" in metrics

            await asyncio.to_thread(own_postgres.stop)
            during = await client.post("/v1/signals", json=signal, headers=headers)
            assert during.status_code == 503, during.text
            assert during.headers["Retry-After"] == "5"
            assert during.json()["error"] == "service_unavailable"
            health = await client.get("/healthz")
            assert health.status_code == 503 and health.json()["database"] == "down"

            await asyncio.to_thread(own_postgres.start)
            # The client retries as told, with the same Idempotency-Key, until it is taken.
            async with asyncio.timeout(30):
                while (retry := await client.post("/v1/signals", json=signal, headers=headers)).status_code == 503:
                    await asyncio.sleep(float(retry.headers["Retry-After"]) / 5)
            assert retry.status_code == 202, retry.text
            again = await client.post("/v1/signals", json=signal, headers=headers)
            assert again.status_code == 202 and again.json()["id"] == retry.json()["id"]

    conn = await asyncpg.connect(own_postgres.dsn("signals"))
    try:
        assert await conn.fetchval("SELECT count(*) FROM signals") == 1
        assert await conn.fetchval("SELECT count(*) FROM outbox WHERE topic = 'signals.received.v1'") == 1
    finally:
        await conn.close()
