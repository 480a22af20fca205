"""The release worker: every release period it takes the waiting records, lets the domain
decide (``domain.release``), and in one transaction appends each released group to its
municipality's stream and outbox and deletes the released and suppressed records. An
advisory lock keeps two replicas from releasing at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import structlog
from prometheus_client import Counter

from services.municipalities import domain, repository
from services.municipalities.config import MunicipalitiesSettings
from services.municipalities.contract import envelope_for, topic_for
from shared.outbox import add_event
from shared.service import Runtime
from shared.worker import Periodic

log = structlog.get_logger(__name__)

_RELEASE_LOCK = 0x4D55_4E49  # any constant; this service's own database


class ReleaseWorker:
    def __init__(self, runtime: Runtime[MunicipalitiesSettings]) -> None:
        self._runtime = runtime
        self._settings = runtime.settings
        self._periodic = Periodic("release", self._settings.release_seconds, self.tick)
        # What a data protection officer (and an operator) watches: how much is suppressed.
        self._records = Counter(
            "sts_municipal_records_total", "Anonymous records by fate (released, suppressed).", ["fate"],
            registry=runtime.metrics.registry,
        )

    async def start(self) -> None:
        await self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()

    async def tick(self) -> None:
        await self.release_due(datetime.now(UTC))

    async def release_due(self, now: datetime) -> domain.Outcome:
        settings = self._settings
        async with self._runtime.pool.acquire() as conn, conn.transaction():
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", _RELEASE_LOCK):
                return domain.Outcome()
            rows = await repository.waiting_for_update(conn)
            row_ids = {id(record): row_id for row_id, record in rows}
            outcome = domain.release([record for _, record in rows], now, k=settings.k,
                                     max_delay=timedelta(seconds=settings.max_delay_seconds))
            release_id = str(uuid4())
            for group in outcome.released:
                envelope = envelope_for(group, release_id, settings.service_name)
                code = group.key.municipality_code
                await add_event(conn, topic_for(code), envelope)
                await repository.append_release(conn, code, envelope.event_id, group.key.month,
                                                envelope.model_dump_json(), now)
            gone = [*(m for g in outcome.released for m in g.members), *outcome.suppressed]
            await repository.delete_waiting(conn, [row_ids[id(r)] for r in gone])
        self._records.labels("released").inc(sum(g.count for g in outcome.released))
        self._records.labels("suppressed").inc(len(outcome.suppressed))
        if outcome.released or outcome.suppressed:
            log.info("release tick", groups=len(outcome.released),
                     released=sum(g.count for g in outcome.released), suppressed=len(outcome.suppressed),
                     waiting=len(outcome.waiting))
        return outcome
