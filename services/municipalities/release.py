"""The release worker: every release period it runs the release use case
(``service.release_due``: the domain decides, each released group goes to its
municipality's stream and outbox, in one transaction, under an advisory lock so two
replicas never release at once) and counts what was released and suppressed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import structlog

from services.municipalities import domain, service
from services.municipalities.config import MunicipalitiesSettings
from services.municipalities.metrics import MunicipalitiesMetrics
from services.municipalities.service import MunicipalitiesUnitOfWork
from shared.service import Runtime
from shared.worker import Periodic

log = structlog.get_logger(__name__)


class ReleaseWorker:
    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._settings: MunicipalitiesSettings = runtime.settings
        self._policy = service.ReleasePolicy(
            k=self._settings.k,
            producer=self._settings.service_name,
            max_delay=timedelta(seconds=self._settings.max_delay_seconds),
        )
        self._periodic = Periodic("release", self._settings.release_seconds, self.tick)
        self._records = MunicipalitiesMetrics(runtime.metrics.registry).records

    async def start(self) -> None:
        await self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()

    async def tick(self) -> None:
        await self.release_due(datetime.now(UTC))

    async def release_due(self, now: datetime) -> domain.Outcome:
        async with MunicipalitiesUnitOfWork.begin(self._runtime.pool) as uow:
            outcome = await service.release_due(uow, self._policy, now)
        self._records.labels("released").inc(sum(g.count for g in outcome.released))
        self._records.labels("suppressed").inc(len(outcome.suppressed))
        if outcome.released or outcome.suppressed:
            log.info(
                "release tick",
                groups=len(outcome.released),
                released=sum(g.count for g in outcome.released),
                suppressed=len(outcome.suppressed),
                waiting=len(outcome.waiting),
            )
        return outcome
