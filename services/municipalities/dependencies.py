"""What the municipalities' routes and workers share, typed: the settings, the runtime (pool,
consumer, metrics registry), the cap on open streams per credential and the event that ends
open streams on a stop signal. Routes get it with ``Depends(context)`` (the ``Context``
annotation); nothing else reads ``app.state``."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Annotated

import asyncpg
from fastapi import Depends, Request

from services.municipalities.config import MunicipalitiesSettings
from shared.ratelimit import StreamCap
from shared.service import Runtime


@dataclass(frozen=True)
class MunicipalitiesContext:
    settings: MunicipalitiesSettings
    runtime: Runtime
    sse_cap: StreamCap
    sse_stopping: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    def create(cls, settings: MunicipalitiesSettings, runtime: Runtime) -> MunicipalitiesContext:
        return cls(settings=settings, runtime=runtime, sse_cap=StreamCap(settings.sse_max_streams_per_credential))

    @property
    def pool(self) -> asyncpg.Pool:
        return self.runtime.pool


def context(request: Request) -> MunicipalitiesContext:
    """The context ``create_app`` set on the application."""
    found: MunicipalitiesContext = request.app.state.context
    return found


Context = Annotated[MunicipalitiesContext, Depends(context)]
