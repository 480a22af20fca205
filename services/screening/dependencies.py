"""What screening's handlers and jobs share, typed: the settings, the runtime (pool, consumer,
metrics registry) and the screener the use cases take. Screening serves no routes of its own
beyond the shell's, so it needs no FastAPI dependency."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from services.screening.config import ScreeningSettings
from services.screening.metrics import ScreeningMetrics
from services.screening.service import Screener
from shared.context import ServiceContext
from shared.service import Runtime


@dataclass(frozen=True)
class ScreeningContext(ServiceContext[ScreeningSettings]):
    screener: Screener

    @classmethod
    def create(cls, settings: ScreeningSettings, runtime: Runtime) -> ScreeningContext:
        screener = Screener(
            merge_window=timedelta(days=settings.case_merge_window_days),
            metrics=ScreeningMetrics(runtime.metrics.registry),
        )
        return cls(settings=settings, runtime=runtime, screener=screener)
