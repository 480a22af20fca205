"""Background loops: ``Periodic`` runs a coroutine every few seconds until the service
stops, and ``Heartbeat`` is how any loop shows ``/healthz`` that it is still turning."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

import structlog

from shared.logging import describe_error

log = structlog.get_logger(__name__)


class Heartbeat:
    """Beaten by a loop on every turn, including turns that only waited for work.

    The loop is stale when its last beat is older than ``stale_after`` seconds: it hangs, or
    its task died (``task`` is checked too, when given)."""

    def __init__(self, name: str, stale_after: float) -> None:
        self.name = name
        self.stale_after = stale_after
        self.task: asyncio.Task[None] | None = None
        self._last = time.monotonic()

    def beat(self) -> None:
        self._last = time.monotonic()

    def age(self) -> float:
        return time.monotonic() - self._last

    def alive(self) -> bool:
        dead = self.task is not None and self.task.done()
        return not dead and self.age() <= self.stale_after

    def report(self) -> dict[str, object]:
        return {"alive": self.alive(), "heartbeat_age_seconds": round(self.age(), 3)}


class Periodic:
    def __init__(
        self, name: str, every_seconds: float, job: Callable[[], Awaitable[object]],
        *, stale_after: float | None = None,
    ) -> None:
        self.name = name
        self.every_seconds = every_seconds
        self.job = job
        # A round may take a while (a slow dependency, a big batch): allow for it generously.
        self.heartbeat = Heartbeat(name, stale_after or every_seconds * 2 + 120)
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)
        self.heartbeat.task = self._task

    async def stop(self) -> None:
        self._stop.set()
        if self._task:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while not self._stop.is_set():
            self.heartbeat.beat()
            try:
                await self.job()
            except Exception as exc:  # the next round tries again; a crash would stop the job
                log.warning("periodic job failed", job=self.name, error=describe_error(exc))
            self.heartbeat.beat()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.every_seconds)
