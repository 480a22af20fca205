"""What the casework pages get from the running service: its typed context (settings, pool,
the key source that opens sealed signals), kept on ``app.state.context`` by ``api.create_app``."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Annotated

import asyncpg
from fastapi import Depends, Request

from services.casework.config import CaseworkSettings
from services.casework.service import CaseworkUnitOfWork
from shared.sealing import KeySource
from shared.service import Runtime


@dataclass(frozen=True)
class CaseworkContext:
    settings: CaseworkSettings
    runtime: Runtime

    @property
    def pool(self) -> asyncpg.Pool:
        return self.runtime.pool

    @property
    def keys(self) -> KeySource:
        if self.runtime.keys is None:
            raise RuntimeError("create_runtime sets the key source")
        return self.runtime.keys

    def begin(self) -> AbstractAsyncContextManager[CaseworkUnitOfWork]:
        """A unit of work of its own, committed when the block ends."""
        return CaseworkUnitOfWork.begin(self.pool)


def context_of(request: Request) -> CaseworkContext:
    context: CaseworkContext = request.app.state.context
    return context


Context = Annotated[CaseworkContext, Depends(context_of)]
