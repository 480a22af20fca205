"""The matching service process: its consumer plus health and metrics."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.matching.config import MatchingSettings
from services.matching.handlers import register_handlers
from shared.contracts import Topics
from shared.service import create_runtime, create_service_app

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: MatchingSettings | None = None) -> FastAPI:
    runtime = create_runtime(settings or MatchingSettings())
    register_handlers(runtime)
    return create_service_app(
        runtime, title="signal-to-support: matching", migrations=MIGRATIONS,
        produces=[Topics.MATCHING], consumes=[Topics.SCREENING],
        description="Matches needs to local support on the municipality's social map.",
    )
