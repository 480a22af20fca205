"""Retention against a real PostgreSQL: in every service, rows past their limit are deleted
by the retention job, fresh rows and rows still in use stay."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import asyncpg
import pytest

from deploy.stack import REPO
from services.matching.config import MatchingSettings
from services.notify.config import NotifySettings
from services.screening.config import ScreeningSettings
from services.signals.config import SignalsSettings
from shared.config import ServiceSettings
from shared.db import create_pool, migrate
from shared.retention import RetentionJob, purge, shared_purges

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)
OLD = NOW - timedelta(days=400)  # past every default limit
RECENT = NOW - timedelta(days=1)


async def _pool(database_url: str, service: str) -> asyncpg.Pool:
    await migrate(database_url, REPO / "services" / service / "migrations")
    return await create_pool(database_url)


@pytest.fixture
async def signals_db(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await _pool(database_url, "signals")
    yield pool
    await pool.close()


def _job(pool: asyncpg.Pool, settings: ServiceSettings, module: str) -> RetentionJob:
    import importlib

    own = importlib.import_module(f"services.{module}.repository").retention_purges(settings)
    return RetentionJob(lambda: pool, [*shared_purges(settings), *own], every_seconds=3600)


async def _signal(conn: asyncpg.Connection, org: UUID, at: datetime, key: str) -> UUID:
    signal_id = uuid4()
    await conn.execute(
        """INSERT INTO signals (id, organisation_id, caregiver_pseudonym, municipality_code, source_kind,
               urgency, received_at, body, updated_at)
           VALUES ($1, $2, 'p', 'GM0327', 'gp', 'normal', $3, '{"caregiver": {"name": "x"}}', $3)""",
        signal_id,
        org,
        at,
    )
    await conn.execute(
        """INSERT INTO signal_stages (signal_id, stage, occurred_at, event_id)
                          VALUES ($1, 'received', $2, $3)""",
        signal_id,
        at,
        uuid4(),
    )
    await conn.execute(
        """INSERT INTO idempotency_keys (organisation_id, key, request_hash, signal_id, created_at)
                          VALUES ($1, $2, 'h', $3, $4)""",
        org,
        key,
        signal_id,
        at,
    )
    return signal_id


async def test_signals_past_the_limit_go_with_their_timeline_and_fresh_ones_stay(signals_db: asyncpg.Pool) -> None:
    async with signals_db.acquire() as conn:
        org = await conn.fetchval(
            "INSERT INTO organisations (id, name, kind) VALUES ($1, 'gp', 'gp') RETURNING id", uuid4()
        )
        old = await _signal(conn, org, OLD, "old")
        fresh = await _signal(conn, org, RECENT, "fresh")
        # Received long ago but still moving (a referral answered yesterday): it stays.
        active = await _signal(conn, org, OLD, "active")
        await conn.execute("UPDATE signals SET updated_at = $2 WHERE id = $1", active, RECENT)
        # An Idempotency-Key outlives the retry window before its signal does.
        week_old = await _signal(conn, org, NOW - timedelta(days=10), "week-old")

    deleted = await _job(signals_db, SignalsSettings(), "signals").run_once()

    assert deleted["signals"] == 1
    remaining = {r["id"] for r in await signals_db.fetch("SELECT id FROM signals")}
    assert remaining == {fresh, active, week_old}
    assert old not in {r["signal_id"] for r in await signals_db.fetch("SELECT signal_id FROM signal_stages")}
    # The keys older than the 7-day retry window went, whatever their signal's fate.
    assert deleted["idempotency_keys"] == 2
    assert {r["key"] for r in await signals_db.fetch("SELECT key FROM idempotency_keys")} == {"fresh"}


async def test_shared_tables_inbox_and_replayed_dead_letters(signals_db: asyncpg.Pool) -> None:
    async with signals_db.acquire() as conn:
        for at in (OLD, RECENT):
            await conn.execute(
                """INSERT INTO inbox (event_id, consumer, topic, event_type, processed_at)
                                  VALUES ($1, 'signals', 't', 'x', $2)""",
                uuid4(),
                at,
            )
        for status, at in (("replayed", OLD), ("replayed", RECENT), ("dead", OLD), ("parked", OLD)):
            await conn.execute(
                """INSERT INTO dead_letters (topic, partition, "offset", consumer, error_type, error, attempts,
                       body, created_at, status, resolved_at)
                   VALUES ('t', 0, 0, 'signals', 'E', 'e', 1, '\\x00', $2, $1,
                           CASE WHEN $1 = 'replayed' THEN $2::timestamptz END)""",
                status,
                at,
            )

    deleted = await purge(signals_db, shared_purges(ServiceSettings()))

    assert deleted == {"inbox": 1, "dead_letters": 1}
    assert await signals_db.fetchval("SELECT count(*) FROM inbox") == 1
    # A dead letter waiting for the operator, and the events parked behind it, stay.
    left = sorted(r["status"] for r in await signals_db.fetch("SELECT status FROM dead_letters"))
    assert left == ["dead", "parked", "replayed"]


async def test_purges_work_in_batches_until_nothing_is_left(signals_db: asyncpg.Pool) -> None:
    await signals_db.execute(
        """INSERT INTO inbox (event_id, consumer, topic, event_type, processed_at)
           SELECT gen_random_uuid(), 'signals', 't', 'x', $1 FROM generate_series(1, 25)""",
        OLD,
    )
    assert await purge(signals_db, shared_purges(ServiceSettings())[:1], batch=10) == {"inbox": 25}
    assert await signals_db.fetchval("SELECT count(*) FROM inbox") == 0


async def test_closed_cases_go_with_their_screenings(database_url: str) -> None:
    pool = await _pool(database_url, "screening")
    try:
        cases = {}
        for name, last, rescreen in (
            ("closed", OLD, None),
            ("recent", RECENT, None),
            ("rescreen_due_later", OLD, NOW + timedelta(days=1)),
        ):
            cases[name] = uuid4()
            await pool.execute(
                """INSERT INTO cases (id, caregiver_pseudonym, municipality_code, opened_at, last_signal_at,
                       risk_level, confidence, assessment, rescreen_due_at)
                   VALUES ($1, 'p', 'GM0327', $2, $2, 'at_risk', 'low', '{}', $3)""",
                cases[name],
                last,
                rescreen,
            )
            await pool.execute(
                """INSERT INTO screenings (signal_id, case_id, organisation_id, source_kind, received_at,
                       screened_at, result) VALUES ($1, $2, $3, 'gp', $4, $4, '{}')""",
                uuid4(),
                cases[name],
                uuid4(),
                last,
            )

        assert (await _job(pool, ScreeningSettings(), "screening").run_once())["cases"] == 1

        assert {r["id"] for r in await pool.fetch("SELECT id FROM cases")} == {
            cases["recent"],
            cases["rescreen_due_later"],
        }
        assert await pool.fetchval("SELECT count(*) FROM screenings WHERE case_id = $1", cases["closed"]) == 0
        assert await pool.fetchval("SELECT count(*) FROM screenings") == 2
    finally:
        await pool.close()


async def test_notify_keeps_pending_messages_and_recent_referrals(database_url: str) -> None:
    pool = await _pool(database_url, "notify")
    try:
        ids = {}
        for name, status, at in (
            ("sent_long_ago", "delivered", OLD),
            ("sent_recently", "delivered", RECENT),
            ("still_pending", "pending", OLD),
        ):
            ids[name] = uuid4()
            await pool.execute(
                """INSERT INTO notifications (id, dedupe_key, signal_id, case_id, correlation_id, subject_key,
                       recipient_role, channel, address, template, language, subject, body_text, status, created_at)
                   VALUES ($1, $2, $3, $3, 'c', 'k', 'caregiver', 'email', 'a@example.nl', 't', 'nl', 's',
                           'Beste Jan', $4, $5)""",
                ids[name],
                name,
                uuid4(),
                status,
                at,
            )
        referrals = {}
        for name, at in (("stale", OLD), ("recent", RECENT)):
            referrals[name] = uuid4()
            await pool.execute(
                """INSERT INTO referrals (id, case_id, signal_id, organisation_id, correlation_id, subject_key,
                       service_id, service_name, organization_name, signal, created_at, updated_at)
                   VALUES ($1, $2, $2, $2, 'c', 'k', 's', 'S', 'O', '{"caregiver": {}}', $3, $3)""",
                referrals[name],
                uuid4(),
                at,
            )
            await pool.execute(
                """INSERT INTO referral_history (referral_id, status, updated_by, at)
                                  VALUES ($1, 'requested', 'system', $2)""",
                referrals[name],
                at,
            )
        for status, at in (("answered", OLD), ("scheduled", OLD), ("answered", RECENT)):
            await pool.execute(
                """INSERT INTO follow_ups (id, case_id, signal_id, correlation_id, subject_key, status, due_at,
                       created_at) VALUES ($1, $2, $2, 'c', 'k', $3, $4, $4)""",
                uuid4(),
                uuid4(),
                status,
                at,
            )

        deleted = await _job(pool, NotifySettings(), "notify").run_once()

        assert (deleted["notifications"], deleted["referrals"], deleted["follow_ups"]) == (1, 1, 1)
        assert {r["id"] for r in await pool.fetch("SELECT id FROM notifications")} == {
            ids["sent_recently"],
            ids["still_pending"],
        }
        assert {r["id"] for r in await pool.fetch("SELECT id FROM referrals")} == {referrals["recent"]}
        assert await pool.fetchval("SELECT count(*) FROM referral_history") == 1
        assert await pool.fetchval("SELECT count(*) FROM follow_ups") == 2
    finally:
        await pool.close()


async def test_matching_keeps_held_and_confirmed_places(database_url: str) -> None:
    pool = await _pool(database_url, "matching")
    try:
        await pool.execute("""INSERT INTO organization (id, name, raw, content_hash) VALUES ('o', 'O', '{}', 'h')""")
        await pool.execute("""INSERT INTO service (id, organization_id, name, status, raw, content_hash)
                              VALUES ('s', 'o', 'S', 'active', '{}', 'h')""")
        for status, at in (("released", OLD), ("expired", OLD), ("expired", RECENT), ("confirmed", OLD), ("held", OLD)):
            await pool.execute(
                """INSERT INTO reservation (service_id, case_id, status, expires_at, created_at, updated_at)
                   VALUES ('s', $1, $2, $3, $3, $3)""",
                uuid4(),
                status,
                at,
            )

        assert (await _job(pool, MatchingSettings(), "matching").run_once())["reservation"] == 2

        left = sorted(r["status"] for r in await pool.fetch("SELECT status FROM reservation"))
        assert left == ["confirmed", "expired", "held"]
    finally:
        await pool.close()
