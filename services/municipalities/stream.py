"""Delivery of a municipality's released groups over HTTP: Server-Sent Events and signed webhooks.

Both read the stream table from a cursor (the per-municipality sequence number), so a
client resumes where it left off: SSE with ``Last-Event-ID``, a webhook by its stored
cursor. Webhook deliveries are signed and guarded by ``shared.webhooks`` (https to public
addresses only, checked again before every delivery). A failed
delivery is retried with exponential backoff, in order, until it succeeds: nothing is
skipped, and events after it wait. Delivery is at least once (a crash mid-round delivers
again): receivers deduplicate by ``X-Event-Seq``."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
import time
from collections.abc import AsyncIterator
from types import FrameType
from typing import Any

import asyncpg
import httpx
import structlog

from services.municipalities.config import MunicipalitiesSettings
from services.municipalities.contract import EVENT_TYPE
from services.municipalities.domain import DueWebhook
from services.municipalities.repository import MunicipalStore
from shared import webhooks
from shared.service import Runtime
from shared.worker import ClientPeriodic

log = structlog.get_logger(__name__)

SSE_BATCH = 200
WEBHOOK_BATCH = 50  # events per webhook per round, so one busy stream cannot starve others
WEBHOOKS_PER_ROUND = 20


async def server_sent_events(
    pool: asyncpg.Pool,
    municipality_code: str,
    cursor: int,
    *,
    poll_seconds: float,
    keepalive_seconds: float,
    stopping: asyncio.Event,
) -> AsyncIterator[str]:
    """The stream from ``cursor`` on, then live; ends when the client goes away or the
    service stops (the client reconnects elsewhere with ``Last-Event-ID``)."""
    yield "retry: 2000\n: connected\n\n"  # sends the headers now, so the client knows it is on
    idle_since = time.monotonic()
    while not stopping.is_set():
        rows = await MunicipalStore(pool).events_after(municipality_code, cursor, SSE_BATCH)
        for row in rows:
            yield f"id: {row.seq}\nevent: {EVENT_TYPE}\ndata: {row.body}\n\n"
            cursor = row.seq
        if rows:
            idle_since = time.monotonic()
            continue
        if time.monotonic() - idle_since >= keepalive_seconds:
            yield ": keep-alive\n\n"
            idle_since = time.monotonic()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), poll_seconds)


class StopSignals:
    """Sets ``event`` on SIGINT or SIGTERM, then passes the signal on to the server's handler:
    ``install`` once the service started, ``restore`` (the server's own handlers) when it stops.

    The server waits for open responses before the application's own shutdown runs, so
    without this an open stream would hold a stopping service for its whole grace period."""

    def __init__(self, event: asyncio.Event) -> None:
        self.event = event
        self._previous: dict[signal.Signals, Any] = {}

    async def install(self, runtime: Runtime) -> None:
        if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
            return
        loop = asyncio.get_running_loop()
        self._previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

        def handler(sig: int, frame: FrameType | None) -> None:
            loop.call_soon_threadsafe(self.event.set)
            chained = self._previous.get(signal.Signals(sig))
            if callable(chained):
                chained(sig, frame)

        for sig in self._previous:
            signal.signal(sig, handler)

    async def restore(self, runtime: Runtime) -> None:
        for sig, original in self._previous.items():
            signal.signal(sig, original)
        self._previous = {}


class WebhookDelivery(ClientPeriodic):
    """The worker that posts each municipality's new events to its webhooks.

    A round leases the due webhooks in one short statement, then delivers to them with no
    transaction open, several at once (``MUNICIPALITIES_WEBHOOK_CONCURRENCY``); each records
    its own progress, and a failing one backs off alone. A lease left by a crashed process
    runs out and the webhook is taken up again from its stored cursor."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._settings: MunicipalitiesSettings = runtime.settings
        super().__init__(
            "webhook-delivery",
            self._settings.webhook_poll_seconds,
            self.deliver_due,
            timeout=self._settings.webhook_timeout_seconds,
        )

    async def deliver_due(self) -> int:
        """One round over the due webhooks; returns the number of events delivered."""
        # Long enough for a whole batch to time out, so no other replica takes the hook meanwhile.
        lease = self._settings.webhook_timeout_seconds * (WEBHOOK_BATCH + 1)
        hooks = await MunicipalStore(self._runtime.pool).lease_due_webhooks(WEBHOOKS_PER_ROUND, lease)
        delivered = await webhooks.gather_bounded(
            (self._deliver(hook) for hook in hooks), self._settings.webhook_concurrency
        )
        return sum(delivered)

    async def _deliver(self, hook: DueWebhook) -> int:
        store = MunicipalStore(self._runtime.pool)
        events = await store.events_after(hook.municipality_code, hook.delivered_seq, WEBHOOK_BATCH)
        for n, event in enumerate(events):
            headers = {"Content-Type": "application/json", "X-Event-Type": EVENT_TYPE, "X-Event-Seq": str(event.seq)}
            try:
                response = await webhooks.post_signed(
                    self.client,
                    hook.url,
                    hook.secret,
                    event.body.encode(),
                    headers,
                    allow_http_hosts=self._settings.webhook_allow_http_hosts,
                )
                error = None if response.is_success else f"HTTP {response.status_code}"
            except webhooks.UnsafeWebhookURL as exc:
                error = exc.reason
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
            if error is not None:
                backoff = webhooks.backoff_seconds(
                    hook.attempts + 1,
                    self._settings.webhook_backoff_seconds,
                    self._settings.webhook_max_backoff_seconds,
                )
                # The reason goes to the log only: shown to the municipality it would be a scan oracle.
                await store.webhook_failed(hook.id, webhooks.DELIVERY_FAILED, backoff)
                log.warning("webhook delivery failed", webhook=str(hook.id), error=error, retry_in=backoff)
                return n
            await store.webhook_delivered(hook.id, event.seq)
        await store.release_webhook(hook.id)
        return len(events)
