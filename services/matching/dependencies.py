"""What matching's handlers, jobs and routes share, typed: the settings, the runtime (pool,
consumer, metrics registry) and the matcher the use cases take. Routes get it with
``Depends(context)`` (the ``Context`` annotation); nothing else reads ``app.state``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from services.matching.config import MatchingSettings
from services.matching.metrics import MatchingMetrics
from services.matching.service import Matcher
from shared.context import ServiceContext, app_context
from shared.service import Runtime


@dataclass(frozen=True)
class MatchingContext(ServiceContext[MatchingSettings]):
    matcher: Matcher

    @classmethod
    def create(cls, settings: MatchingSettings, runtime: Runtime) -> MatchingContext:
        metrics = MatchingMetrics(runtime.metrics.registry)
        runtime.metric_refreshers.append(metrics.refresh)
        matcher = Matcher(
            max_proposals=settings.max_proposals,
            hold_minutes=settings.reservation_hold_minutes,
            metrics=metrics,
        )
        return cls(settings=settings, runtime=runtime, matcher=matcher)


def context(request: Request) -> MatchingContext:
    return app_context(request, MatchingContext)


Context = Annotated[MatchingContext, Depends(context)]
