"""The screening service process: its consumer plus health and metrics."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.screening import repository
from services.screening.config import ScreeningSettings
from services.screening.handlers import emit_due_rescreens, register_handlers
from shared.contracts import Topics
from shared.service import Runtime, create_runtime, create_service_app
from shared.worker import Periodic

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: ScreeningSettings | None = None) -> FastAPI:
    settings = settings or ScreeningSettings()
    runtime = create_runtime(settings)
    register_handlers(runtime)

    def rescreens(rt: Runtime) -> Periodic:
        return Periodic("rescreen-scheduler", settings.rescreen_check_seconds, lambda: emit_due_rescreens(rt))

    return create_service_app(
        runtime, title="signal-to-support: screening", migrations=MIGRATIONS,
        produces=[Topics.SCREENING], workers=[rescreens], retention=repository.retention_purges,
        description="Scores burden instruments, weighs load against capacity, merges cases, escalates crises.",
    )
