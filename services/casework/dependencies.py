"""What the casework pages get from the running service: its typed context (settings, pool,
the key source that opens sealed signals), kept on ``app.state.context`` by ``api.create_app``."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from services.casework.config import CaseworkSettings
from services.casework.service import CaseworkUnitOfWork
from shared.context import ServiceContext, app_context
from shared.sealing import KeySource


@dataclass(frozen=True)
class CaseworkContext(ServiceContext[CaseworkSettings]):
    @property
    def keys(self) -> KeySource:
        if self.runtime.keys is None:
            raise RuntimeError("create_runtime sets the key source")
        return self.runtime.keys

    def begin(self) -> AbstractAsyncContextManager[CaseworkUnitOfWork]:
        """A unit of work of its own, committed when the block ends."""
        return CaseworkUnitOfWork.begin(self.pool)


def context_of(request: Request) -> CaseworkContext:
    return app_context(request, CaseworkContext)


Context = Annotated[CaseworkContext, Depends(context_of)]
