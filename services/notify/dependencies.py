"""What notify's routes get from the running service: its typed context (settings, metrics,
clock, signed links, ``begin`` for a unit of work), kept on ``app.state.context`` by
``api.create_app``. Routes get it with ``Depends``; nothing else reads ``app.state``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.notify.context import NotifyContext
from shared.context import app_context


def context_of(request: Request) -> NotifyContext:
    return app_context(request, NotifyContext)


Context = Annotated[NotifyContext, Depends(context_of)]
