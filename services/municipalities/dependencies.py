"""What the municipalities' routes and workers share, typed: the settings, the runtime (pool,
consumer, metrics registry), the cap on open streams per credential and the event that ends
open streams on a stop signal (set by ``stop_signals``). Routes get it with ``Depends(context)`` (the ``Context``
annotation); nothing else reads ``app.state``."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from functools import cached_property
from typing import Annotated

from fastapi import Depends, Request

from services.municipalities.config import MunicipalitiesSettings
from services.municipalities.stream import StopSignals
from shared.context import ServiceContext, app_context
from shared.ratelimit import StreamCap
from shared.service import create_runtime


@dataclass(frozen=True)
class MunicipalitiesContext(ServiceContext[MunicipalitiesSettings]):
    sse_cap: StreamCap
    sse_stopping: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    def create(cls, settings: MunicipalitiesSettings) -> MunicipalitiesContext:
        """The context of a new service process: its runtime made from ``settings``."""
        cap = StreamCap(settings.sse_max_streams_per_credential)
        return cls(settings=settings, runtime=create_runtime(settings), sse_cap=cap)

    @cached_property
    def stop_signals(self) -> StopSignals:
        return StopSignals(self.sse_stopping)


def context(request: Request) -> MunicipalitiesContext:
    return app_context(request, MunicipalitiesContext)


Context = Annotated[MunicipalitiesContext, Depends(context)]
