"""The typed context a service's handlers, jobs and routes share (its ``dependencies``
module subclasses it with the service's own collaborators): the service's settings, typed,
and the runtime with the pool. ``create_app`` puts it on the application once; routes get it
through FastAPI ``Depends`` (``app_context``), never from ``app.state`` themselves."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import asyncpg
from fastapi import Request

from shared.config import ServiceSettings
from shared.service import Runtime

SettingsT = TypeVar("SettingsT", bound=ServiceSettings)
ContextT = TypeVar("ContextT", bound="ServiceContext[Any]")


@dataclass(frozen=True)
class ServiceContext(Generic[SettingsT]):
    settings: SettingsT
    runtime: Runtime[SettingsT]

    @property
    def pool(self) -> asyncpg.Pool:
        return self.runtime.pool


def app_context(request: Request, kind: type[ContextT]) -> ContextT:
    """The context ``create_app`` set on the application (``app.state.context``)."""
    found = request.app.state.context
    if not isinstance(found, kind):
        raise TypeError(f"the application's context is not a {kind.__name__}")
    return found
