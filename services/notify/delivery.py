"""The delivery worker: sends pending notifications with leases, after their transaction committed.

1. **Claim.** One short statement takes due messages (pending, due, no live lease, their
   channel's circuit breaker closed), counts the attempt and leases each for
   ``delivery_lease_seconds``, and commits. Replicas share the work (``SKIP LOCKED``).
2. **Send**, with no transaction open, at most ``delivery_concurrency`` at a time, each cut off
   after half the lease. A message erased after its claim is re-checked and not sent.
3. **Record** the outcome per message, in its own short transaction, with its
   ``notification.sent`` event: only if the row is still pending and still this attempt's, so
   an erased or finished row is never overwritten or reported.

Delivery is at least once, and a repeat is recognisable: a crash (or a shutdown that has to
cut a send off) duplicates at most the messages in flight at that instant. Their attempt is
already counted; once the lease runs out they are claimed again and sent with the same
notification id: the e-mail's ``Message-ID`` is ``<id@sender domain>``, a webhook carries
``X-Delivery-Id: <id>`` and an SMS the gateway ``reference`` ``<id>``, so receivers can drop
the repeat. Every other message of the batch keeps its recorded outcome.

Transient failures are retried with exponential backoff (capped) for
``delivery_retry_window_hours`` from the first attempt; a permanent error fails the message
at once. Failures that say a channel is down or misconfigured feed a circuit breaker per
channel (per host for webhooks, see breakers.py): while it is open nothing of that channel is
claimed. The loop never dies on an error; its ``heartbeat`` beats every round and
``breaker_states`` shows the breakers, both for ``/healthz``."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime, timedelta

import structlog

from services.notify.breakers import Breakers, State
from services.notify.channels import Channel, PermanentDeliveryError, channel_fault
from services.notify.config import NotifySettings
from services.notify.context import NotifyContext
from services.notify.domain import STATUS_VIEW, Notification
from services.notify.notifications import report
from services.notify.repository import DELIVERY_CHANNEL
from shared.contracts import DeliveryStatus
from shared.listener import Listener
from shared.logging import describe_error, redact
from shared.worker import Periodic

log = structlog.get_logger(__name__)

# Rounds that fail (the database is away) back off up to this, then go on.
_MAX_ROUND_BACKOFF_SECONDS = 30.0
# The oldest-pending gauge is refreshed at most this often.
_OBSERVE_EVERY_SECONDS = 5.0
# stop() leaves this much of the shutdown grace period for what stops after it.
_SHUTDOWN_MARGIN_SECONDS = 2.0


class DeliveryWorker:
    def __init__(self, ctx: NotifyContext, channels: dict[str, Channel]) -> None:
        self.ctx = ctx
        self.channels = channels
        s = ctx.settings
        self.breakers = Breakers(
            s.delivery_breaker_failures, s.delivery_breaker_cooloff_seconds, s.delivery_breaker_max_cooloff_seconds
        )
        self._inflight: set[asyncio.Task[None]] = set()
        # The last round took every free slot: more may be due, so a freed slot starts the next.
        self._full = False
        self._observed_at = 0.0
        # A round takes at most a claim and a poll interval; two minutes without one is a hang.
        # Rounds that fail (the database is away) back off up to _MAX_ROUND_BACKOFF_SECONDS.
        self._loop = Periodic(
            "delivery",
            s.delivery_poll_seconds,
            self._round,
            stale_after=120,
            retry_seconds=s.delivery_poll_seconds,
            max_retry_seconds=_MAX_ROUND_BACKOFF_SECONDS,
        )
        self.heartbeat = self._loop.heartbeat
        # A committed new or re-sent message wakes the loop (repository.DELIVERY_CHANNEL).
        self._listener = Listener(lambda: ctx.pool, DELIVERY_CHANNEL, self._loop.wake)

    @property
    def settings(self) -> NotifySettings:
        return self.ctx.settings

    @property
    def breaker_states(self) -> dict[str, str]:
        """Each breaker that ever tripped: ``closed``, ``half-open`` or ``open``."""
        return {key: state.name.lower().replace("_", "-") for key, state in self.breakers.states().items()}

    # --- running ----------------------------------------------------------------------------

    async def start(self) -> None:
        await self._loop.start()

    async def stop(self) -> None:
        """Stop claiming, let the sends in flight finish and record their outcomes within the
        shutdown grace period (minus a margin); a send still running then is cut off and left
        to its lease: it is sent again, with the same id, after the lease ran out."""
        await self._loop.stop()
        await self._listener.close()
        if self._inflight:
            grace = max(0.5, self.settings.shutdown_grace_seconds - _SHUTDOWN_MARGIN_SECONDS)
            _, cut = await asyncio.wait(set(self._inflight), timeout=grace)
            for task in cut:
                task.cancel()
            await asyncio.gather(*cut, return_exceptions=True)
            if cut:
                log.warning(
                    "sends cut off at shutdown; they are sent again once their lease ran out",
                    count=len(cut),
                    lease_seconds=self.settings.delivery_lease_seconds,
                )
        for channel in self.channels.values():
            with contextlib.suppress(Exception):
                await channel.close()

    async def _round(self) -> None:
        """Claim what is due for the free slots and start sending it; the sends run on."""
        await self._listener.ensure()
        free = self.settings.delivery_concurrency - len(self._inflight)
        self._full = (self._dispatch(await self.claim(free)) if free > 0 else 0) == free
        await self._observe_now_and_then()

    def _dispatch(self, messages: list[Notification]) -> int:
        for message in messages:
            task = asyncio.create_task(self.deliver(message), name=f"deliver-{message.id}")
            self._inflight.add(task)
            task.add_done_callback(self._finished)
        return len(messages)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        if self._full:
            self._full = False
            self._loop.wake()
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("delivery task failed", error=describe_error(exc))

    async def deliver_due(self) -> int:
        """One round, waited for: claim what is due (up to the concurrency), send and record it."""
        messages = await self.claim(self.settings.delivery_concurrency)
        await asyncio.gather(*(self.deliver(message) for message in messages))
        return len(messages)

    # --- claim, send, record ----------------------------------------------------------------

    async def claim(self, limit: int) -> list[Notification]:
        """Claim due messages of closed breakers, plus one probe per half-open breaker; each
        claim is its own short transaction (the unit of work's)."""
        lease = self.settings.delivery_lease_seconds
        async with self.ctx.begin() as uow:
            claimed = await uow.notifications.claim_due(limit, lease, skip=self.breakers.blocked())
        for key in self.breakers.probes_wanted():
            if len(claimed) >= limit:
                break
            async with self.ctx.begin() as uow:
                probe = await uow.notifications.claim_due(1, lease, only=key)
            if probe:
                self.breakers.probing(key)
                claimed.extend(probe)
        return claimed

    async def deliver(self, message: Notification) -> None:
        """Send one claimed message and record its outcome."""
        if message.channel == STATUS_VIEW:  # the notification.sent event is the delivery
            await self._record(message, None)
            return
        key = message.breaker_key
        counted = False
        try:
            async with self.ctx.begin() as uow:
                pending = await uow.notifications.still_pending(message.id)
            if not pending:
                log.info("notification erased after its claim: not sent", notification_id=str(message.id))
                return
            error: Exception | None = None
            try:
                # Bounded well inside the lease: a send never outlives it (which would duplicate it).
                async with asyncio.timeout(self.settings.delivery_lease_seconds / 2):
                    await self.channels[message.channel].send(message)
            except Exception as exc:
                error = exc
            self._count_for_breaker(key, error)
            counted = True
            await self._record(message, error)
        finally:
            if not counted:  # cut off or skipped: if it was a probe, another may go
                self.breakers.released(key)

    def _count_for_breaker(self, key: str, error: Exception | None) -> None:
        if error is not None and channel_fault(error):
            before = self.breakers.state(key)
            state = self.breakers.failed(key)
            if state is State.OPEN and before is not State.OPEN:
                log.warning(
                    "channel unavailable: circuit breaker open, its messages wait",
                    channel=key,
                    error=describe_error(error),
                )
        else:
            if self.breakers.state(key) is not State.CLOSED:
                log.info("channel back: circuit breaker closed", channel=key)
            self.breakers.succeeded(key)
        self.ctx.metrics.breaker_state.labels(key).set(int(self.breakers.state(key)))

    def _outcome(
        self, message: Notification, error: Exception | None
    ) -> tuple[DeliveryStatus, str | None, float | None]:
        """(status, detail, retry in seconds) for a send's result."""
        if error is None:
            return DeliveryStatus.DELIVERED, None, None
        detail = describe_error(error)
        if isinstance(error, PermanentDeliveryError):
            return DeliveryStatus.FAILED, detail, None
        s = self.settings
        delay = min(s.delivery_max_backoff_seconds, s.delivery_backoff_seconds * 2 ** max(0, message.attempts - 1))
        window_ends = (message.retry_window_from or datetime.now(UTC)) + timedelta(hours=s.delivery_retry_window_hours)
        if datetime.now(UTC) + timedelta(seconds=delay) > window_ends:
            return DeliveryStatus.FAILED, f"gave up after {message.attempts} attempts: {detail}", None
        return DeliveryStatus.PENDING, redact(repr(error)), delay

    async def _record(self, message: Notification, error: Exception | None) -> None:
        """Record the outcome in its own transaction. The database may be away for a moment:
        keep trying while the lease holds; after that the message is sent again anyway."""
        status, detail, retry_in = self._outcome(message, error)
        give_up_at = time.monotonic() + self.settings.delivery_lease_seconds / 2
        backoff = 0.2
        while True:
            try:
                async with self.ctx.begin() as uow:
                    recorded = await uow.notifications.record_outcome(
                        message.id, message.attempts, status, detail, retry_in
                    )
                    if recorded and status is not DeliveryStatus.PENDING:
                        await report(uow, self.ctx, message, status, detail)
                break
            except Exception as exc:
                if time.monotonic() + backoff > give_up_at:
                    log.error(
                        "outcome not recorded; the message is sent again once its lease ran out",
                        notification_id=str(message.id),
                        outcome=status,
                        error=describe_error(exc),
                    )
                    return
                await asyncio.sleep(backoff)
                backoff = min(5.0, backoff * 2)
        ids = {"notification_id": str(message.id), "channel": message.channel, "attempt": message.attempts}
        if not recorded:
            log.info("outcome not recorded: the notification was erased or finished meanwhile", outcome=status, **ids)
        elif status is DeliveryStatus.FAILED:
            log.error("notification failed", error=detail, **ids)
        elif status is DeliveryStatus.PENDING:
            self.ctx.metrics.deliveries.labels(message.channel, "retry").inc()
            log.warning("notification will be retried", retry_in=retry_in, error=detail, **ids)

    async def _observe_now_and_then(self) -> None:
        if time.monotonic() - self._observed_at >= _OBSERVE_EVERY_SECONDS:
            await self.observe()

    async def observe(self) -> None:
        """Refresh the gauges: the oldest pending message's age and the breakers' states."""
        async with self.ctx.begin() as uow:
            self.ctx.metrics.oldest_pending.set(await uow.notifications.oldest_pending_age())
        for key, state in self.breakers.states().items():
            self.ctx.metrics.breaker_state.labels(key).set(int(state))
        self._observed_at = time.monotonic()
