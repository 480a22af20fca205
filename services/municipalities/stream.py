"""Delivery of a municipality's released groups over HTTP: Server-Sent Events and signed webhooks.

Both read the stream table from a cursor (the per-municipality sequence number), so a
client resumes where it left off: SSE with ``Last-Event-ID``, a webhook by its stored
cursor. Webhook deliveries are signed ``X-Signature: t=<unix>,v1=<hex>``, where hex is
HMAC-SHA256(secret, f"{t}.{body}"); a receiver checks it and that t is recent. A failed
delivery is retried with exponential backoff, in order, until it succeeds: nothing is
skipped, and events after it wait. Delivery is at least once (a crash mid-round delivers
again): receivers deduplicate by ``X-Event-Seq``."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import signal
import threading
import time
from collections.abc import AsyncIterator, Iterator
from types import FrameType

import asyncpg
import httpx
import structlog

from services.municipalities import repository
from services.municipalities.config import MunicipalitiesSettings
from services.municipalities.contract import EVENT_TYPE
from shared.service import Runtime
from shared.worker import Periodic

log = structlog.get_logger(__name__)

SSE_BATCH = 200
WEBHOOK_BATCH = 50  # events per webhook per round, so one busy stream cannot starve others
WEBHOOKS_PER_ROUND = 20


def signature(secret: str, body: str, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


async def server_sent_events(
    pool: asyncpg.Pool, municipality_code: str, cursor: int, *, poll_seconds: float,
    keepalive_seconds: float, stopping: asyncio.Event,
) -> AsyncIterator[str]:
    """The stream from ``cursor`` on, then live; ends when the client goes away or the
    service stops (the client reconnects elsewhere with ``Last-Event-ID``)."""
    yield "retry: 2000\n: connected\n\n"  # sends the headers now, so the client knows it is on
    idle_since = time.monotonic()
    while not stopping.is_set():
        rows = await repository.events_after(pool, municipality_code, cursor, SSE_BATCH)
        for row in rows:
            yield f"id: {row['seq']}\nevent: {EVENT_TYPE}\ndata: {row['body']}\n\n"
            cursor = row["seq"]
        if rows:
            idle_since = time.monotonic()
            continue
        if time.monotonic() - idle_since >= keepalive_seconds:
            yield ": keep-alive\n\n"
            idle_since = time.monotonic()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), poll_seconds)


@contextlib.contextmanager
def set_on_stop_signals(event: asyncio.Event) -> Iterator[None]:
    """Set ``event`` on SIGINT or SIGTERM, then pass the signal on to the server's handler.

    The server waits for open responses before the application's own shutdown runs, so
    without this an open stream would hold a stopping service for its whole grace period."""
    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield
        return
    loop = asyncio.get_running_loop()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handler(sig: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(event.set)
        if callable(previous[sig]):
            previous[sig](sig, frame)

    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, original in previous.items():
            signal.signal(sig, original)


class WebhookDelivery:
    """The worker that posts each municipality's new events to its webhooks."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._settings: MunicipalitiesSettings = runtime.settings  # type: ignore[assignment]
        self._http: httpx.AsyncClient | None = None
        self._periodic = Periodic("webhook-delivery", self._settings.webhook_poll_seconds, self.deliver_due)
        self.heartbeat = self._periodic.heartbeat  # shown by /healthz

    async def start(self) -> None:
        self._http = httpx.AsyncClient(timeout=self._settings.webhook_timeout_seconds, follow_redirects=False)
        await self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()
        if self._http is not None:
            await self._http.aclose()

    async def deliver_due(self) -> int:
        """One round over the due webhooks; returns the number of events delivered."""
        delivered = 0
        async with self._runtime.pool.acquire() as conn, conn.transaction():
            for hook in await repository.claim_due_webhooks(conn, WEBHOOKS_PER_ROUND):
                delivered += await self._deliver(conn, hook)
        return delivered

    async def _deliver(self, conn: asyncpg.Connection, hook: asyncpg.Record) -> int:
        assert self._http is not None
        events = await repository.events_after(conn, hook["municipality_code"], hook["delivered_seq"], WEBHOOK_BATCH)
        attempts = hook["attempts"]
        for n, event in enumerate(events):
            headers = {
                "Content-Type": "application/json",
                "X-Event-Type": EVENT_TYPE,
                "X-Event-Seq": str(event["seq"]),
                "X-Signature": signature(hook["secret"], event["body"], int(time.time())),
            }
            try:
                response = await self._http.post(hook["url"], content=event["body"].encode(), headers=headers)
                error = None if response.is_success else f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
            if error is not None:
                backoff = min(self._settings.webhook_backoff_seconds * 2 ** attempts,
                              self._settings.webhook_max_backoff_seconds)
                await repository.webhook_failed(conn, hook["id"], error, backoff)
                log.warning("webhook delivery failed", webhook=str(hook["id"]), error=error, retry_in=backoff)
                return n
            await repository.webhook_delivered(conn, hook["id"], event["seq"])
            attempts = 0
        return len(events)
