"""The screening service process: its consumer, the re-screen scheduler, health and metrics."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.screening import repository, service
from services.screening.config import ScreeningSettings
from services.screening.dependencies import ScreeningContext
from services.screening.handlers import register_handlers
from services.screening.service import ScreeningUnitOfWork
from shared.contracts import Topics, utcnow
from shared.service import create_runtime, create_service_app
from shared.worker import Periodic

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: ScreeningSettings | None = None) -> FastAPI:
    settings = settings or ScreeningSettings()
    ctx = ScreeningContext.create(settings, create_runtime(settings))
    register_handlers(ctx.runtime.consumer, ctx)
    return create_service_app(
        ctx.runtime,
        migrations=MIGRATIONS,
        produces=[Topics.SCREENING],
        workers=[lambda _: _rescreen_scheduler(ctx)],
        retention=repository.retention_purges,
        description="Scores burden instruments, weighs load against capacity, merges cases, escalates crises.",
    )


def _rescreen_scheduler(ctx: ScreeningContext) -> Periodic:
    async def emit() -> None:
        async with ScreeningUnitOfWork.begin(ctx.pool) as uow:
            await service.emit_due_rescreens(uow, utcnow())

    return Periodic("rescreen-scheduler", ctx.settings.rescreen_check_seconds, emit)
