"""PostgreSQL access with asyncpg: the pool and the numbered-SQL migration runner.

Migrations are plain ``NNN_name.sql`` files applied in order, each in its own transaction,
recorded in ``schema_migrations`` under a track name (``shared`` for the outbox and inbox,
then the service's own). An advisory lock keeps two replicas from migrating at once."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import asyncpg
import structlog

log = structlog.get_logger(__name__)

SHARED_MIGRATIONS = Path(__file__).parent / "migrations"
_MIGRATION_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")
_MIGRATION_LOCK = 0x5175_7070  # any constant; all services use their own database


async def _init_connection(conn: asyncpg.Connection) -> None:
    for typename in ("json", "jsonb"):
        await conn.set_type_codec(typename, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


class _PooledConnection(asyncpg.Connection):  # type: ignore[misc]  # asyncpg has no stubs
    """A connection that goes back to the pool without the session-reset round trip.

    asyncpg's default reset (``pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL``)
    runs on every release and took about a tenth of the signals service's CPU under load. Pooled
    connections never leave session state behind: advisory locks are transaction-level (the
    migration lock is taken on a connection of its own), cursors end with their transaction,
    nothing SETs a session variable, and the LISTEN connection UNLISTENs before its release.
    asyncpg still rolls back an open transaction and drops listener callbacks on release."""

    def get_reset_query(self) -> str:
        return ""


class BoundedPool(asyncpg.Pool):  # type: ignore[misc]  # asyncpg has no stubs: its Pool is Any
    """A pool whose ``acquire`` gives up after ``acquire_timeout`` seconds by default.

    Without it a request or a consumer waits as long as the database is away or the pool is
    exhausted; with it they get a ``TimeoutError`` that ``shared.failures`` classifies as an
    outage (503 for an API, a held record for a consumer)."""

    def __init__(self, *args: object, acquire_timeout: float, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.acquire_timeout = acquire_timeout

    def acquire(self, *, timeout: float | None = None) -> Any:
        return super().acquire(timeout=self.acquire_timeout if timeout is None else timeout)


async def create_pool(dsn: str, *, size: int = 10, acquire_timeout: float = 5.0) -> asyncpg.Pool:
    pool = BoundedPool(
        dsn,
        min_size=1,
        max_size=size,
        max_queries=50_000,
        max_inactive_connection_lifetime=300.0,
        connection_class=_PooledConnection,
        record_class=asyncpg.Record,
        init=_init_connection,
        command_timeout=30,
        acquire_timeout=acquire_timeout,
        loop=None,
    )
    return await pool


def migration_files(directory: Path) -> list[tuple[int, Path]]:
    files = []
    for path in sorted(directory.glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if not match:
            raise ValueError(f"migration {path} is not named NNN_name.sql")
        files.append((int(match.group(1)), path))
    versions = [v for v, _ in files]
    if len(set(versions)) != len(versions):
        raise ValueError(f"duplicate migration numbers in {directory}")
    return files


async def apply_migrations(conn: asyncpg.Connection, tracks: dict[str, Path]) -> list[str]:
    """Apply every pending migration of each track; returns the names applied."""
    applied: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
    try:
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   track text NOT NULL, version int NOT NULL, name text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now(),
                   PRIMARY KEY (track, version))"""
        )
        for track, directory in tracks.items():
            done = {
                r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations WHERE track = $1", track)
            }
            for version, path in migration_files(directory):
                if version in done:
                    continue
                async with conn.transaction():
                    await conn.execute(path.read_text())
                    await conn.execute(
                        "INSERT INTO schema_migrations (track, version, name) VALUES ($1, $2, $3)",
                        track,
                        version,
                        path.name,
                    )
                applied.append(f"{track}/{path.name}")
                log.info("migration applied", track=track, migration=path.name)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)
    return applied


async def migrate(dsn: str, service_migrations: Path) -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        return await apply_migrations(conn, {"shared": SHARED_MIGRATIONS, "service": service_migrations})
    finally:
        await conn.close()


# What a command-line tool meets when the database is not there (refused, wrong port,
# timeout, unknown database or role): worth one line to the operator, not a traceback.
CONNECTION_ERRORS = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InvalidCatalogNameError,
    asyncpg.InvalidAuthorizationSpecificationError,
    asyncpg.InterfaceError,
)


async def connect(dsn: str, *, connect_timeout: float = 10.0) -> asyncpg.Connection:
    """One connection decoding json and jsonb as the services' pools do (a command-line tool's)."""
    conn = await asyncpg.connect(dsn, timeout=connect_timeout)
    await _init_connection(conn)
    return conn


def connection_failure(dsn: str, env_name: str, exc: BaseException) -> str:
    """The one line a CLI prints when it cannot reach its database."""
    where = re.sub(r"//[^@/]*@", "//", dsn)  # never print a password
    return (
        f"error: cannot reach the database {where} ({type(exc).__name__}: {exc or 'no answer'}); "
        f"is `make run` up? Otherwise set {env_name} or pass --database-url"
    )
