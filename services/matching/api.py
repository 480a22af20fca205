"""The matching service process: its consumer, the reservation sweeper, the social-map
admin API, the public social map, health and metrics."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.matching import pages, repository, service
from services.matching.admin import router as admin_router
from services.matching.config import MatchingSettings
from services.matching.dependencies import MatchingContext
from services.matching.handlers import register_handlers
from services.matching.service import MatchingUnitOfWork
from shared.application import with_context
from shared.contracts import Topics, utcnow
from shared.service import create_runtime, create_service_app
from shared.worker import Periodic

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: MatchingSettings | None = None) -> FastAPI:
    settings = settings or MatchingSettings()
    ctx = MatchingContext.create(settings, create_runtime(settings))
    register_handlers(ctx.runtime.consumer, ctx)
    app = create_service_app(
        ctx.runtime,
        description="Matches needs to local support on the municipality's social map.",
        migrations=MIGRATIONS,
        produces=[Topics.MATCHING],
        retention=repository.retention_purges,
        workers=[lambda _: _reservation_sweeper(ctx)],
    )
    return with_context(app, ctx, admin_router, pages.router)


def _reservation_sweeper(ctx: MatchingContext) -> Periodic:
    async def expire() -> None:
        async with MatchingUnitOfWork.begin(ctx.pool) as uow:
            await service.expire_reservations(uow, utcnow())

    return Periodic("reservation-sweeper", ctx.settings.reservation_sweep_seconds, expire)
