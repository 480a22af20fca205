"""What the console's routes get through FastAPI's ``Depends``: the service's typed context
(settings, pool, the monitor of every service), the page language and the signed-in operator."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query, Request

from services.operators import service
from services.operators.config import OperatorsSettings
from services.operators.labels import LANGUAGES
from services.operators.monitor import Monitor
from services.operators.service import OperatorsUnitOfWork
from shared.context import ServiceContext, app_context

SESSION_COOKIE = "sts_operator"


@dataclass(frozen=True)
class OperatorsContext(ServiceContext[OperatorsSettings]):
    """One per process: made by ``api.create_app``, kept on ``app.state.context``."""

    monitor: Monitor

    def begin(self) -> AbstractAsyncContextManager[OperatorsUnitOfWork]:
        """A unit of work of its own, committed when the block ends."""
        return OperatorsUnitOfWork.begin(self.pool)


def context_of(request: Request) -> OperatorsContext:
    return app_context(request, OperatorsContext)


Context = Annotated[OperatorsContext, Depends(context_of)]


class NotSignedIn(Exception):
    """The request has no valid operator session."""


def language(request: Request, lang: Annotated[str | None, Query(pattern="^(nl|en)$")] = None) -> str:
    """``?lang=`` first, then the remembered choice, then Dutch."""
    return lang or (c if (c := request.cookies.get("lang")) in LANGUAGES else "nl")


async def signed_in_operator(context: OperatorsContext, token: str | None) -> str | None:
    if not token:
        return None
    async with context.begin() as uow:
        return await service.operator_for(uow, token)


async def operator(request: Request, context: Context) -> str:
    name = await signed_in_operator(context, request.cookies.get(SESSION_COOKIE))
    if name is None:
        raise NotSignedIn()
    return name


Lang = Annotated[str, Depends(language)]
Operator = Annotated[str, Depends(operator)]
