"""Idempotent event consumption that waits out outages and dead-letters only what is broken.

For every record: skip it when its ``event_type`` header names an event this service does not
handle (contracts are additive), parse the envelope (a record that is not one is poison:
dead-lettered at once), route by its ``event_type`` to its handler (the payload's type comes
from the contracts' ``PAYLOADS``, so a service's route table names only the handler of each
event type), decrypt
its sealed signal (``shared.sealing``; a destroyed data key means the caregiver was erased:
the event is dropped like a tombstoned one; the key holder away is an outage), then in
ONE transaction: park the event if its key has an unresolved dead letter on this topic (so
it never overtakes it), drop it if it is about something erased (tombstone), insert the
inbox row and run the handler, which writes its state and its outbox events. A redelivered
event hits the inbox row and is skipped.

Failures are classified (``shared.failures``). An infrastructure failure (the database or
broker away, a pool timeout, a serialization failure or deadlock) is never dead-lettered:
the lane holds the record and retries with jittered, capped backoff for as long as it
takes, until shutdown. Any other failure is retried while the database answers, for
``dead_letter_after_seconds`` and at least ``max_attempts`` times (long enough to ride out
a restart), then dead-lettered: the dead letter and its ``<topic>.dlq`` copy (through the
outbox) are written in one transaction BEFORE FastStream commits the offset; if that
transaction fails it is waited out like any outage. A ``PermanentError`` is dead-lettered
at once.

A lane that holds a record longer than aiokafka's ``max_poll_interval_ms`` (5 minutes) is
taken out of its group, and the partition moves to another lane, which is delivered the
same uncommitted record: nothing is lost, the inbox (and the dead letters, by event id)
dedupe the copy the first lane may still finish."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import asyncpg
import structlog
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from pydantic import BaseModel, ValidationError

from shared import dead_letters, sealing
from shared.contracts import PAYLOADS, Envelope, EventType, RawEnvelope
from shared.crypto import CryptoError
from shared.dead_letters import ConsumedRecord
from shared.failures import is_infrastructure_failure
from shared.logging import describe_error
from shared.metrics import Metrics
from shared.sealing import KeyErased, KeySource
from shared.tombstones import is_erased

log = structlog.get_logger(__name__)

Handler = Callable[[asyncpg.Connection, Envelope[Any]], Awaitable[None]]
# Topic -> event type -> its handler: what a service's ``register_handlers`` subscribes.
Routes = Mapping[str, Mapping[str, Handler]]

# An erasure is never parked behind a dead letter nor dropped: it must reach every
# service, and it forgets the key's dead letters itself.
_ALWAYS_HANDLED = frozenset({EventType.CAREGIVER_ERASED})


class PermanentError(Exception):
    """The event can never be handled (it contradicts the contract): no retries, DLQ."""


class _Unreadable(Exception):
    """The payload can never be read: not the contract, or its ciphertext does not authenticate."""


class ConsumerStopping(Exception):
    """The service stops while a record is held: it is not committed, so it is redelivered."""


@dataclass(frozen=True)
class _Route:
    payload: type[BaseModel]
    handler: Handler


@dataclass
class ConsumerSettings:
    group_id: str
    max_attempts: int = 4
    backoff_seconds: float = 0.2
    # Group members per subscriber: partitions are processed in parallel, each in order.
    workers: int = 3
    # A failure that persists this long while the dependencies answer is the event's fault.
    dead_letter_after_seconds: float = 300.0
    max_backoff_seconds: float = 10.0
    # aiokafka's limit between polls; a lane holding a record longer leaves its group (see above).
    max_poll_interval_ms: int = 300_000
    fetch_max_wait_ms: int = 500


@dataclass
class _Waiting:
    topic: str
    partition: int
    offset: int
    since: float
    error: str


class EventConsumer:
    """Registers one FastStream subscriber per topic and runs every event through the inbox."""

    def __init__(
        self,
        broker: KafkaBroker,
        pool_getter: Callable[[], asyncpg.Pool],
        metrics: Metrics,
        settings: ConsumerSettings,
        keys_getter: Callable[[], KeySource | None] = lambda: None,
        payloads: Mapping[str, type[BaseModel]] = PAYLOADS,
    ) -> None:
        self._broker = broker
        # The pool is created in the app's lifespan, after handlers are registered.
        self._pool = pool_getter
        self._keys = keys_getter
        self._metrics = metrics
        self._settings = settings
        # Event type -> payload model: the contracts' map (tests pass their own event types).
        self._payloads = payloads
        self._stopping = asyncio.Event()
        self._waiting: dict[int, _Waiting] = {}
        self._subscribers: dict[str, Any] = {}
        self.topics: list[str] = []
        # The event types handled per topic (the rest are ignored): the event catalogue reads it.
        self.event_types: dict[str, tuple[str, ...]] = {}

    def subscribe(self, routes: Routes) -> None:
        """One subscriber per topic, each in its own consumer group (``<service>.<topic>``,
        so topics never rebalance each other) with ``workers`` members: partitions are
        handled in parallel, each partition in order, so one caregiver's events stay ordered.
        An event type without a payload model in the contracts is refused here, at start-up."""
        for topic, handlers in routes.items():
            unknown = sorted(set(handlers) - set(self._payloads))
            if unknown:
                raise ValueError(f"no payload model in the contracts for {', '.join(unknown)}")
            topic_routes = {kind: _Route(self._payloads[kind], handler) for kind, handler in handlers.items()}
            self.topics.append(topic)
            self.event_types[topic] = tuple(topic_routes)
            subscriber = self._broker.subscriber(
                topic,
                group_id=self.group(topic),
                auto_offset_reset="earliest",
                ack_policy=AckPolicy.NACK_ON_ERROR,
                max_workers=self._settings.workers,
                max_poll_interval_ms=self._settings.max_poll_interval_ms,
                fetch_max_wait_ms=self._settings.fetch_max_wait_ms,
                title=f"{self._settings.group_id}:{topic}",
            )
            subscriber(self._consumer_for(topic, topic_routes))
            self._subscribers[topic] = subscriber

    def group(self, topic: str) -> str:
        return f"{self._settings.group_id}.{topic}"

    def stop(self) -> None:
        """Let held records go (uncommitted) so the subscribers can stop promptly."""
        self._stopping.set()

    def _consumer_for(self, topic: str, routes: dict[str, _Route]) -> Callable[..., Awaitable[None]]:
        # FastStream injects a handler's parameters from the message: bind these by closure.
        async def consume(message: KafkaMessage) -> None:
            await self.handle_record(topic, routes, message)

        return consume

    async def handle_record(self, topic: str, routes: dict[str, _Route], message: Any) -> None:
        record = message.raw_message
        body: bytes = message.body
        structlog.contextvars.unbind_contextvars("correlation_id", "event_id", "event_type")
        consumed = ConsumedRecord(
            topic=topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key.decode(errors="replace") if record.key else None,
            headers={k: v.decode(errors="replace") for k, v in (record.headers or ())},
            body=body,
        )
        try:
            # Most records on a topic are events this service does not handle: the relay's
            # event-type header tells so without parsing the body (a record without the
            # header is parsed, and routed or dead-lettered, as before).
            if consumed.headers.get("event_type", "") not in ("", *routes):
                self._metrics.messages.labels(topic, "ignored").inc()
                return
            try:
                raw = RawEnvelope.model_validate_json(body)
            except ValidationError as exc:
                await self._dead_letter(consumed, PermanentError(_describe(exc)), 0)
                return
            consumed = replace(consumed, event_id=str(raw.event_id), event_type=raw.event_type)
            structlog.contextvars.bind_contextvars(
                correlation_id=raw.correlation_id, event_id=str(raw.event_id), event_type=raw.event_type
            )
            route = routes.get(raw.event_type)
            if route is None:
                self._metrics.messages.labels(topic, "ignored").inc()
                return
            await self._handle(consumed, raw, route)
        finally:
            self._stop_waiting()

    async def _open(self, raw: RawEnvelope, route: _Route) -> Envelope[Any]:
        """The typed event, its sealed signal decrypted. The envelope is valid already: only
        the payload needs its type. Fetching a key may fail as an outage (waited out)."""
        keys = self._keys()
        try:
            payload = raw.payload if keys is None else await sealing.open_payload(raw.payload, keys, raw.subject)
            return raw.model_copy(update={"payload": route.payload.model_validate(payload)})
        except ValidationError as exc:
            raise _Unreadable(_describe(exc, "payload")) from exc
        except CryptoError as exc:  # tampered with, or not an envelope: never readable
            raise _Unreadable(str(exc)) from exc

    async def _handle(self, consumed: ConsumedRecord, raw: RawEnvelope, route: _Route) -> None:
        topic = consumed.topic
        started = time.perf_counter()
        attempts = 0
        first_failure = 0.0
        outages = 0
        while True:
            try:
                event = await self._open(raw, route)
                outcome = await self._apply(consumed, raw, event, route.handler)
            except _Unreadable as exc:
                await self._dead_letter(consumed, PermanentError(str(exc)), 0)
                return
            except KeyErased:
                # Crypto-shredded: the caregiver was erased, so this is a tombstoned event.
                log.info("event whose data key is destroyed dropped as erased", topic=topic)
                outcome = "erased"
            except PermanentError as exc:
                await self._dead_letter(consumed, exc, attempts + 1)
                return
            except Exception as exc:
                if self._stopping.is_set():
                    raise ConsumerStopping("service stopping") from exc
                if is_infrastructure_failure(exc) or not await self._dependencies_answer():
                    outages += 1
                    self._metrics.failures.labels(topic, type(exc).__name__, "infrastructure").inc()
                    await self._wait_out(consumed, exc, outages)
                    continue
                outages = 0
                attempts += 1
                first_failure = first_failure or time.monotonic()
                self._metrics.failures.labels(topic, type(exc).__name__, "handler").inc()
                log.warning("handler failed", topic=topic, attempt=attempts, error=describe_error(exc))
                if (
                    attempts >= self._settings.max_attempts
                    and time.monotonic() - first_failure >= self._settings.dead_letter_after_seconds
                ):
                    await self._dead_letter(consumed, exc, attempts)
                    return
                await self._pause(self._backoff(attempts))
                continue
            if outcome == "processed" and raw.event_type == EventType.CAREGIVER_ERASED and self._keys() is not None:
                self._keys().forget_subject(raw.subject)  # type: ignore[union-attr]
            self._metrics.messages.labels(topic, outcome).inc()
            self._metrics.handle_seconds.labels(topic).observe(time.perf_counter() - started)
            return

    async def _apply(self, consumed: ConsumedRecord, raw: RawEnvelope, event: Envelope[Any], handler: Handler) -> str:
        consumer = self._settings.group_id
        async with self._pool().acquire() as conn, conn.transaction():
            if consumed.key is not None and event.event_type not in _ALWAYS_HANDLED:
                queue = await dead_letters.unresolved_for_key(conn, consumer, consumed.topic, consumed.key)
                if queue:
                    head = queue[0]
                    if head["status"] == "replaying" and head["event_id"] == consumed.event_id:
                        # Its replay came back, in order: handle it now.
                        await dead_letters.resolve_replayed(conn, head["id"])
                    elif any(row["event_id"] == consumed.event_id for row in queue):
                        log.info("event already waits in the dead-letter queue", topic=consumed.topic)
                        return "duplicate"
                    else:
                        await dead_letters.park(conn, consumer, consumed, behind=head["id"])
                        log.warning(
                            "event parked behind a dead letter of its key", topic=consumed.topic, dead_letter=head["id"]
                        )
                        return "parked"
            if event.event_type not in _ALWAYS_HANDLED and await is_erased(conn, event.subject, raw.payload):
                log.info("event about an erased caregiver dropped", topic=consumed.topic)
                return "erased"
            fresh = await conn.fetchval(
                """INSERT INTO inbox (event_id, consumer, topic, event_type)
                   VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING true""",
                event.event_id,
                consumer,
                consumed.topic,
                event.event_type,
            )
            if not fresh:
                log.info("duplicate event skipped", topic=consumed.topic)
                return "duplicate"
            await handler(conn, event)
        return "processed"

    async def _dead_letter(self, consumed: ConsumedRecord, error: Exception, attempts: int) -> None:
        """Record the dead letter and its DLQ copy; until that commits, the offset is not."""
        outages = 0
        while True:
            try:
                async with self._pool().acquire() as conn, conn.transaction():
                    dead_letter_id = await dead_letters.record_dead_letter(
                        conn, self._settings.group_id, self.group(consumed.topic), consumed, error, attempts
                    )
                break
            except Exception as exc:  # our own SQL: whatever it is, committing now would lose the record
                if self._stopping.is_set():
                    raise ConsumerStopping("service stopping") from exc
                outages += 1
                self._metrics.failures.labels(consumed.topic, type(exc).__name__, "infrastructure").inc()
                await self._wait_out(consumed, exc, outages)
        self._metrics.dlq.labels(consumed.topic).inc()
        self._metrics.messages.labels(consumed.topic, "dead_lettered").inc()
        log.error(
            "event dead-lettered",
            topic=consumed.topic,
            error=describe_error(error),
            error_type=type(error).__name__,
            partition=consumed.partition,
            offset=consumed.offset,
            attempts=attempts,
            dead_letter=dead_letter_id,
        )

    async def _dependencies_answer(self) -> bool:
        """After a handler error: is the database there? If not, the error was an outage."""
        try:
            await asyncio.wait_for(self._pool().fetchval("SELECT 1"), 5)
            return True
        except Exception:
            return False

    async def _wait_out(self, consumed: ConsumedRecord, error: Exception, outages: int) -> None:
        lane = id(asyncio.current_task())
        if lane not in self._waiting:
            self._metrics.waiting.labels(consumed.topic).inc()
            self._waiting[lane] = _Waiting(
                consumed.topic, consumed.partition, consumed.offset, time.time(), describe_error(error)
            )
            log.warning(
                "dependency unavailable: holding the event until it is back",
                topic=consumed.topic,
                partition=consumed.partition,
                offset=consumed.offset,
                error=describe_error(error),
            )
        else:
            self._waiting[lane].error = describe_error(error)
        await self._pause(self._backoff(outages))

    def _stop_waiting(self) -> None:
        waiting = self._waiting.pop(id(asyncio.current_task()), None)
        if waiting is not None:
            self._metrics.waiting.labels(waiting.topic).dec()
            log.info(
                "dependency back: event moves on",
                topic=waiting.topic,
                waited_seconds=round(time.time() - waiting.since, 1),
            )

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self._settings.max_backoff_seconds, self._settings.backoff_seconds * 2.0 ** min(attempt - 1, 30))
        # Jitter, so that lanes do not retry in lockstep; nothing secret depends on it.
        return ceiling * random.uniform(0.5, 1.0)  # noqa: S311

    async def _pause(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            return
        raise ConsumerStopping("service stopping")

    # --- what /healthz and /metrics show ----------------------------------------------

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Each topic's lanes (alive = its consume task runs) and the records held waiting."""
        ok = True
        report: dict[str, Any] = {}
        now = time.time()
        for topic, subscriber in self._subscribers.items():
            tasks = list(getattr(subscriber, "tasks", []))
            alive = sum(not task.done() for task in tasks)
            ok = ok and alive >= self._settings.workers
            report[topic] = {
                "lanes": self._settings.workers,
                "lanes_alive": alive,
                "waiting_on_dependency": [
                    {
                        "partition": w.partition,
                        "offset": w.offset,
                        "seconds": round(now - w.since, 1),
                        "error": w.error[:300],
                    }
                    for w in self._waiting.values()
                    if w.topic == topic
                ],
            }
        return ok, report

    async def update_lag(self) -> None:
        """Set the lag gauge from the group members' own view (no broker round trip)."""
        for topic, subscriber in self._subscribers.items():
            for member in list(getattr(subscriber, "consumer_subgroup", [])):
                for partition in member.assignment():
                    highwater = member.highwater(partition)
                    if highwater is None:
                        continue
                    try:
                        position = await asyncio.wait_for(member.position(partition), 1)
                    except Exception:  # noqa: S112 - rebalancing or stopping: skip this round, nothing to log
                        continue
                    self._metrics.lag.labels(topic, str(partition.partition)).set(max(highwater - position, 0))


def _describe(exc: ValidationError, *prefix: str) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in (*prefix, *err['loc'])) or '(body)'}: {err['msg']}" for err in exc.errors()
    )
