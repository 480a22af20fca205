"""A background task that runs a coroutine every few seconds until the service stops."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger(__name__)


class Periodic:
    def __init__(self, name: str, every_seconds: float, job: Callable[[], Awaitable[object]]) -> None:
        self.name = name
        self.every_seconds = every_seconds
        self.job = job
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        self._stop.set()
        if self._task:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                await self.job()
            except Exception as exc:  # the next round tries again; a crash would stop the job
                log.warning("periodic job failed", job=self.name, error=repr(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.every_seconds)
