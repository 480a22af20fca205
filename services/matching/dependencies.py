"""What matching's handlers, jobs and routes share, typed: the settings, the runtime (pool,
consumer, metrics registry) and the matcher the use cases take. Routes get it with
``Depends(context)`` (the ``Context`` annotation); nothing else reads ``app.state``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import asyncpg
from fastapi import Depends, Request

from services.matching.config import MatchingSettings
from services.matching.metrics import MatchingMetrics
from services.matching.service import Matcher
from shared.service import Runtime


@dataclass(frozen=True)
class MatchingContext:
    settings: MatchingSettings
    runtime: Runtime
    matcher: Matcher

    @classmethod
    def create(cls, settings: MatchingSettings, runtime: Runtime) -> MatchingContext:
        metrics = MatchingMetrics(runtime.metrics.registry)
        runtime.metric_refreshers.append(metrics.refresh)
        matcher = Matcher(producer=settings.service_name, max_proposals=settings.max_proposals,
                          hold_minutes=settings.reservation_hold_minutes, metrics=metrics)
        return cls(settings=settings, runtime=runtime, matcher=matcher)

    @property
    def pool(self) -> asyncpg.Pool:
        return self.runtime.pool


def context(request: Request) -> MatchingContext:
    """The context ``create_app`` set on the application."""
    found: MatchingContext = request.app.state.context
    return found


Context = Annotated[MatchingContext, Depends(context)]
