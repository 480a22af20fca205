"""The matching service process: its consumer, the reservation sweeper, the social-map
admin API, health and metrics."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.matching import pages, repository
from services.matching.admin import router as admin_router
from services.matching.config import MatchingSettings
from services.matching.handlers import register_handlers
from shared.contracts import Topics, utcnow
from shared.service import Runtime, create_runtime, create_service_app
from shared.worker import Periodic

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: MatchingSettings | None = None) -> FastAPI:
    settings = settings or MatchingSettings()
    runtime = create_runtime(settings)
    register_handlers(runtime)

    def sweeper(rt: Runtime) -> Periodic:
        async def expire() -> None:
            async with rt.pool.acquire() as conn:
                await repository.expire_reservations(conn, utcnow())

        return Periodic("reservation-sweeper", settings.reservation_sweep_seconds, expire)

    app = create_service_app(
        runtime, title="signal-to-support: matching", migrations=MIGRATIONS,
        produces=[Topics.MATCHING], workers=[sweeper], retention=repository.retention_purges,
        description="Matches needs to local support on the municipality's social map.",
    )
    app.include_router(admin_router)
    app.include_router(pages.router)
    return app
