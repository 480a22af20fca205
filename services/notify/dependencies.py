"""What notify's routes get from the running service: its typed context (settings, metrics,
clock, signed links) and a unit of work on its pool."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Annotated

from fastapi import Depends, Request

from services.notify.context import NotifyContext
from services.notify.service import NotifyUnitOfWork


def context_of(request: Request) -> NotifyContext:
    context: NotifyContext = request.app.state.notify
    return context


Context = Annotated[NotifyContext, Depends(context_of)]


def begin(request: Request) -> AbstractAsyncContextManager[NotifyUnitOfWork]:
    """A unit of work of its own for the route, committed when the block ends."""
    return NotifyUnitOfWork.begin(request.app.state.runtime.pool)
