"""What the municipalities' routes and workers share, typed: the settings, the runtime (pool,
consumer, metrics registry), the cap on open streams per credential and the event that ends
open streams on a stop signal. Routes get it with ``Depends(context)`` (the ``Context``
annotation); nothing else reads ``app.state``."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from services.municipalities.config import MunicipalitiesSettings
from shared.context import ServiceContext, app_context
from shared.ratelimit import StreamCap
from shared.service import Runtime


@dataclass(frozen=True)
class MunicipalitiesContext(ServiceContext[MunicipalitiesSettings]):
    sse_cap: StreamCap
    sse_stopping: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    def create(cls, settings: MunicipalitiesSettings, runtime: Runtime) -> MunicipalitiesContext:
        return cls(settings=settings, runtime=runtime, sse_cap=StreamCap(settings.sse_max_streams_per_credential))


def context(request: Request) -> MunicipalitiesContext:
    return app_context(request, MunicipalitiesContext)


Context = Annotated[MunicipalitiesContext, Depends(context)]
