"""The delivery worker: sends pending notifications after their transaction committed.

A batch is claimed (``FOR UPDATE SKIP LOCKED``, so replicas share the work), sent
concurrently, and each outcome is recorded with its notification.sent event in the
claim's transaction. Transient failures are retried with exponential backoff; after the
last attempt, or on a permanent error, the notification is failed: visible in the status
view and counted in ``sts_notifications_total``. A crash after sending but before the
commit sends that message again: delivery is at least once, with a stable Message-ID and
``X-Delivery-Id`` so the receiving side can tell."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import asyncpg
import structlog

from services.notify import repository
from services.notify.channels import Channel, Outgoing, PermanentDeliveryError
from services.notify.context import NotifyContext
from services.notify.domain import STATUS_VIEW
from services.notify.notifications import report
from shared.service import Runtime

log = structlog.get_logger(__name__)


class DeliveryWorker:
    def __init__(self, runtime: Runtime, ctx: NotifyContext, channels: dict[str, Channel],
                 batch_size: int = 50) -> None:
        self.runtime = runtime
        self.ctx = ctx
        self.channels = channels
        self.batch_size = batch_size
        settings = ctx.settings
        self.poll_seconds = settings.delivery_poll_seconds
        self.max_attempts = settings.delivery_max_attempts
        self.backoff_seconds = settings.delivery_backoff_seconds
        self._limit = asyncio.Semaphore(settings.delivery_concurrency)
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

    async def _send(self, row: Any) -> Exception | None:
        if row["channel"] == STATUS_VIEW:  # the notification.sent event is the delivery
            return None
        message = Outgoing(
            notification_id=str(row["id"]), to=row["address"], subject=row["subject"],
            body_text=row["body_text"], body_html=row["body_html"], language=row["language"],
            secret=row["webhook_secret"], kind=row["template"],
        )
        async with self._limit:
            try:
                await self.channels[row["channel"]].send(message)
            except Exception as exc:
                return exc
        return None

    async def deliver_due(self) -> int:
        async with self.runtime.pool.acquire() as conn, conn.transaction():
            rows = await repository.claim_due(conn, self.batch_size)
            outcomes = await asyncio.gather(*(self._send(row) for row in rows))
            for row, error in zip(rows, outcomes, strict=True):
                await self._record(conn, row, error)
        return len(rows)

    async def _record(self, conn: asyncpg.Connection, row: Any, error: Exception | None) -> None:
        if error is None:
            await repository.mark(conn, row["id"], "delivered")
            await report(conn, self.ctx, dict(row), "delivered", None)
        elif isinstance(error, PermanentDeliveryError) or row["attempts"] + 1 >= self.max_attempts:
            detail = str(error) or repr(error)
            await repository.mark(conn, row["id"], "failed", detail)
            await report(conn, self.ctx, dict(row), "failed", detail)
            log.error("notification failed", notification_id=str(row["id"]), channel=row["channel"], error=detail)
        else:
            delay = self.backoff_seconds * 2 ** row["attempts"]
            await repository.mark(conn, row["id"], "pending", repr(error), delay)
            self.ctx.metrics.deliveries.labels(row["channel"], "retry").inc()
            log.warning("notification will be retried", notification_id=str(row["id"]),
                        attempt=row["attempts"] + 1, retry_in=delay, error=repr(error))
