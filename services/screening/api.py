"""The screening service process: its consumer plus health and metrics."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.screening.config import ScreeningSettings
from services.screening.handlers import register_handlers
from shared.contracts import Topics
from shared.service import create_runtime, create_service_app

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: ScreeningSettings | None = None) -> FastAPI:
    runtime = create_runtime(settings or ScreeningSettings())
    register_handlers(runtime)
    return create_service_app(
        runtime, title="signal-to-support: screening", migrations=MIGRATIONS,
        produces=[Topics.SCREENING], consumes=[Topics.SIGNALS],
        description="Scores burden instruments, weighs load against capacity, merges cases, escalates crises.",
    )
