"""The casework service: ``create_app`` builds it (consumers, pages, health and metrics)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.casework.config import CaseworkSettings
from services.casework.dependencies import CaseworkContext
from services.casework.handlers import register_handlers
from services.casework.pages import router
from shared.application import with_context
from shared.contracts import Topics
from shared.service import create_runtime, create_service_app

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: CaseworkSettings | None = None) -> FastAPI:
    settings = settings or CaseworkSettings()
    ctx = CaseworkContext(settings, create_runtime(settings))
    register_handlers(ctx.runtime.consumer, ctx)
    app = create_service_app(
        ctx.runtime,
        description="The caregiver consultant's workbench: work queues, case pages and actions.",
        migrations=MIGRATIONS,
        produces=[Topics.CASEWORK],
    )
    return with_context(app, ctx, router)
