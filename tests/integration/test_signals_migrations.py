"""The signals database's migration history against a real PostgreSQL: a new database and one
that ran the first version of 002 (which still created the municipalities' tables, since moved
to their own service) end in the same schema."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from uuid import uuid4

import asyncpg
import pytest

from deploy.stack import REPO, ExternalPostgres, create_databases
from shared.db import SHARED_MIGRATIONS, apply_migrations

pytestmark = pytest.mark.integration

SIGNALS = REPO / "services" / "signals" / "migrations"
MOVED = (
    "municipality_keys",
    "stream_salts",
    "signal_facts",
    "municipal_streams",
    "municipal_events",
    "municipal_webhooks",
)

# Every table, column, index and constraint of the public schema, and which migrations ran.
SCHEMA = """
    SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable
           || ' ' || coalesce(column_default, '') AS line
      FROM information_schema.columns WHERE table_schema = 'public'
    UNION ALL SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname = 'public'
    UNION ALL SELECT 'constraint ' || conrelid::regclass || ' ' || pg_get_constraintdef(oid)
      FROM pg_constraint WHERE connamespace = 'public'::regnamespace
    UNION ALL SELECT 'migration ' || track || ' ' || version FROM schema_migrations
    ORDER BY 1"""


async def _migrated(dsn: str, service: Path) -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        await apply_migrations(conn, {"shared": SHARED_MIGRATIONS, "service": service})
        return [r["line"] for r in await conn.fetch(SCHEMA)]
    finally:
        await conn.close()


async def test_a_new_database_and_one_that_had_the_municipal_tables_end_alike(
    postgres_url: str, tmp_path: Path
) -> None:
    fresh, old = f"t_{uuid4().hex[:12]}", f"t_{uuid4().hex[:12]}"
    await asyncio.to_thread(create_databases, postgres_url, [fresh, old])
    server = ExternalPostgres(postgres_url)

    # The history as it was up to 002: 001, then a 002 that made the erasures table and the
    # municipalities' tables (stand-ins here: only their names matter to 003).
    first = tmp_path / "first"
    first.mkdir()
    shutil.copy(SIGNALS / "001_signals.sql", first)
    old_002 = (SIGNALS / "002_erasures.sql").read_text()
    old_002 += "".join(f"CREATE TABLE {table} (id int);\n" for table in MOVED)
    (first / "002_municipalities.sql").write_text(old_002)
    await _migrated(server.dsn(old), first)

    upgraded = await _migrated(server.dsn(old), SIGNALS)
    new = await _migrated(server.dsn(fresh), SIGNALS)
    assert upgraded == new
    assert not [line for line in new if any(f" {table}." in line for table in MOVED)]
    assert "column erasures.event_ids ARRAY NO " in new
