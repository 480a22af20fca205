"""The delivery worker: sends pending notifications after their transaction committed.

Each claimed notification is sent and its outcome recorded, with the notification.sent
event, in the claim's transaction. Transient failures are retried with exponential
backoff; after the last attempt, or on a permanent error, it is marked failed (visible in
the status view and counted in metrics)."""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from prometheus_client import Counter

from services.notify import repository
from services.notify.channels import Channel, Outgoing, PermanentDeliveryError
from services.notify.handlers import report
from shared.service import Runtime

log = structlog.get_logger(__name__)


class DeliveryWorker:
    def __init__(self, runtime: Runtime, channels: dict[str, Channel], *, poll_seconds: float,
                 max_attempts: int, backoff_seconds: float, batch_size: int = 50) -> None:
        self.runtime = runtime
        self.channels = channels
        self.poll_seconds = poll_seconds
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.batch_size = batch_size
        self.deliveries = Counter(
            "sts_notifications_total", "Notification delivery outcomes.", ["channel", "outcome"],
            registry=runtime.metrics.registry,
        )
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="delivery-worker")

    async def stop(self) -> None:
        self._stopping = True
        if self._task:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while not self._stopping:
            try:
                handled = await self.deliver_due()
            except Exception as exc:
                log.warning("delivery round failed", error=repr(exc))
                handled = 0
            if handled < self.batch_size:
                await asyncio.sleep(self.poll_seconds)

    async def deliver_due(self) -> int:
        producer = self.runtime.settings.service_name
        async with self.runtime.pool.acquire() as conn, conn.transaction():
            rows = await repository.claim_due(conn, self.batch_size)
            for row in rows:
                channel = row["channel"]
                try:
                    if channel != "status_view":  # the status view is updated by the event itself
                        await self.channels[channel].send(Outgoing(
                            notification_id=str(row["id"]), to=row["address"], subject=row["subject"],
                            body_text=row["body_text"], language=row["language"]))
                except PermanentDeliveryError as exc:
                    await self._fail(conn, row, str(exc), producer)
                    continue
                except Exception as exc:
                    if row["attempts"] + 1 >= self.max_attempts:
                        await self._fail(conn, row, repr(exc), producer)
                    else:
                        delay = self.backoff_seconds * 2 ** row["attempts"]
                        await repository.mark(conn, row["id"], "pending", repr(exc), delay)
                        self.deliveries.labels(channel, "retry").inc()
                    continue
                await repository.mark(conn, row["id"], "delivered")
                await report(conn, producer=producer, row=dict(row), status="delivered", detail=None)
                self.deliveries.labels(channel, "delivered").inc()
        return len(rows)

    async def _fail(self, conn, row, error: str, producer: str) -> None:
        await repository.mark(conn, row["id"], "failed", error)
        await report(conn, producer=producer, row=dict(row), status="failed", detail=error)
        self.deliveries.labels(row["channel"], "failed").inc()
        log.error("notification failed", notification_id=str(row["id"]), error=error)
