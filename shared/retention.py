"""Retention: personal data is kept only as long as its purpose needs (GDPR art. 5(1)(e)).

Each service declares, per table, a ``Purge``: a DELETE of the rows whose limit has passed,
given the cutoff time. One job (``RetentionJob``, a ``Periodic`` loop) runs every service's
purges; every service purges its own copies by its own rule, so no service reaches into
another's store and nothing needs a cross-service event. The rules that every service shares
(inbox, resolved dead letters) are here; the services add theirs (``retention_purges`` in
their repository) through ``create_service_app(retention=...)``.

A purge deletes at most ``batch`` rows per statement and repeats until fewer come back, so
a large backlog never holds long locks. Its statement takes ``$1`` (the cutoff, a
timestamptz) and ``$2`` (the batch size) and returns one row per deleted row."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import structlog

from shared.config import ServiceSettings
from shared.worker import Periodic

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Purge:
    """Rows of one table past their retention limit."""

    table: str
    days: float
    sql: str

    def cutoff(self, now: datetime) -> datetime:
        return now - timedelta(days=self.days)


def shared_purges(settings: ServiceSettings) -> list[Purge]:
    """The tables every service has. Inbox rows (consumed event ids) go once no redelivery or
    replay can bring their event again; dead letters once replayed (their bodies carry the
    event's personal data). A dead letter still waiting for the operator is never purged:
    events of its key are parked behind it."""
    return [
        Purge(
            "inbox",
            settings.retention_inbox_days,
            """
            DELETE FROM inbox WHERE ctid IN (
                SELECT ctid FROM inbox WHERE processed_at < $1 LIMIT $2)
            RETURNING 1""",
        ),
        Purge(
            "dead_letters",
            settings.retention_dead_letters_days,
            """
            DELETE FROM dead_letters WHERE id IN (
                SELECT id FROM dead_letters WHERE status = 'replayed' AND resolved_at < $1 LIMIT $2)
            RETURNING 1""",
        ),
    ]


async def purge(
    pool: asyncpg.Pool, purges: Sequence[Purge], *, now: datetime | None = None, batch: int = 500
) -> dict[str, int]:
    """Run every purge to the end; the number of rows deleted per table."""
    now = now or datetime.now(UTC)
    deleted: dict[str, int] = {}
    for rule in purges:
        total = 0
        while True:
            async with pool.acquire() as conn, conn.transaction():
                rows = len(await conn.fetch(rule.sql, rule.cutoff(now), batch))
            total += rows
            if rows < batch:
                break
        deleted[rule.table] = deleted.get(rule.table, 0) + total
    return deleted


class RetentionJob:
    """Runs the purges every ``retention_check_seconds``; its heartbeat is in ``/healthz``."""

    def __init__(self, pool: Callable[[], asyncpg.Pool], purges: Sequence[Purge], every_seconds: float) -> None:
        self._pool = pool
        self.purges = list(purges)
        self._periodic = Periodic("retention", every_seconds, self.run_once)
        self.heartbeat = self._periodic.heartbeat

    async def run_once(self) -> dict[str, int]:
        deleted = await purge(self._pool(), self.purges)
        if any(deleted.values()):
            # Table names and counts only.
            log.info("retention purge", **{table: n for table, n in deleted.items() if n})
        return deleted

    async def start(self) -> None:
        await self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()
