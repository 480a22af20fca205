"""Background loops: ``Periodic`` is the one loop every background job of every service runs
on (the outbox relay, notify's delivery worker, the sweepers and purges), ``ClientPeriodic``
is one whose rounds talk HTTP, and ``Heartbeat`` is how a loop shows ``/healthz`` that it is
still turning.

A round that failed is retried after a capped, jittered backoff (a database or broker away is
waited out, never the end of the job); a round that left work behind runs again at once; and
``wake()`` starts the next round early (a NOTIFY, a freed delivery slot)."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
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
    """Runs ``job`` every ``every_seconds`` until stopped.

    ``job`` returning ``Periodic.AGAIN`` means it left work behind (a full batch): the next
    round starts at once. A failed round is logged and counted (``on_error``) and the next one
    waits ``retry_seconds`` doubled per failure in a row, up to ``max_retry_seconds``, with
    jitter; without ``retry_seconds`` it waits the usual interval."""

    AGAIN = object()

    def __init__(
        self,
        name: str,
        every_seconds: float,
        job: Callable[[], Awaitable[object]],
        *,
        stale_after: float | None = None,
        retry_seconds: float | None = None,
        max_retry_seconds: float = 10.0,
        on_error: Callable[[Exception], None] | None = None,
    ) -> None:
        self.name = name
        self.every_seconds = every_seconds
        self.job = job
        self.retry_seconds = retry_seconds
        self.max_retry_seconds = max_retry_seconds
        self.on_error = on_error
        # A round may take a while (a slow dependency, a big batch): allow for it generously.
        self.heartbeat = Heartbeat(name, stale_after or every_seconds * 2 + 120)
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """Start the next round now rather than after the interval."""
        self._wake.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)
        self.heartbeat.task = self._task

    async def stop(self) -> None:
        """Finish the round in flight, then stop."""
        self._stop.set()
        self._wake.set()
        if self._task:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            self.heartbeat.beat()
            # Cleared before the round: a wake-up that comes during it starts the next one.
            self._wake.clear()
            try:
                outcome = await self.job()
                failures = 0
            except Exception as exc:  # the next round tries again; a crash would stop the job
                failures += 1
                if self.on_error is not None:
                    self.on_error(exc)
                log.warning("periodic job failed", job=self.name, error=describe_error(exc), attempt=failures)
                await self._sleep(self._retry_delay(failures))
                continue
            self.heartbeat.beat()
            if outcome is not Periodic.AGAIN:
                await self._sleep(self.every_seconds)

    def _retry_delay(self, failures: int) -> float:
        if self.retry_seconds is None:
            return self.every_seconds
        # Jitter, so instances that failed together do not retry together; nothing secret draws on it.
        jitter = random.uniform(0.5, 1.0)  # noqa: S311
        return float(min(self.retry_seconds * 2 ** min(failures, 10), self.max_retry_seconds) * jitter)

    async def _sleep(self, seconds: float) -> None:
        """Wait, but wake for ``wake()`` or a stop."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)


class ClientPeriodic(Periodic):
    """A ``Periodic`` whose rounds talk HTTP through one client (``client``): opened when the
    loop starts, closed once its last round finished. Redirects are not followed: a job posts
    or reads where it was told, never somewhere a server points it to."""

    def __init__(
        self,
        name: str,
        every_seconds: float,
        job: Callable[[], Awaitable[object]],
        *,
        timeout: float,
        **options: Any,
    ) -> None:
        super().__init__(name, every_seconds, job, **options)
        self._timeout = timeout
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            raise RuntimeError(f"{self.name} is not started")
        return self._client

    async def start(self) -> None:
        self._client = httpx.AsyncClient(timeout=self._timeout, follow_redirects=False)
        await super().start()

    async def stop(self) -> None:
        await super().stop()
        if self._client is not None:
            await self._client.aclose()
            self._client = None
