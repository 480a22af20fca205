"""Idempotent event consumption that waits out outages and dead-letters only what is broken.

Each topic has one lane per instance: it polls a batch of records (up to ``batch_size``, from
all the partitions the instance holds, each partition in order) and FastStream commits their
offsets once, after the batch's database work has committed. For every record: skip it when
its ``event_type`` header names an event this service does not handle (contracts are
additive), parse the envelope (a record that is not one is poison: dead-lettered at once),
route by its ``event_type`` to its handler (the payload's type comes from the contracts'
``PAYLOADS``, so a service's route table names only the handler of each event type), decrypt
its sealed signal (``shared.sealing``; a destroyed data key means the caregiver was erased:
the event is dropped like a tombstoned one; the key holder away is an outage), then, inside
the transaction: park the event if its key has an unresolved dead letter on this topic (so
it never overtakes it), drop it if it is about something erased (tombstone), insert the
inbox row and run the handler, which writes its state and its outbox events. A redelivered
event hits the inbox row and is skipped.

The batch's events share one transaction. If any of it fails, it is rolled back and the
events are handled again one at a time, each in its own transaction, as follows.

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
taken out of its group, and its partitions move to another instance's lane, which is
delivered the same uncommitted records: nothing is lost, the inbox (and the dead letters, by
event id) dedupe the copy the first lane may still finish."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import asyncpg
import structlog
from aiokafka import ConsumerRecord
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
from shared.tombstones import erased_among, is_erased

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


class _Ready(NamedTuple):
    """A record to handle: where it came from, its envelope (payload still raw), its route."""

    consumed: ConsumedRecord
    raw: RawEnvelope
    route: _Route


class _Checked(NamedTuple):
    """What one statement per batch found for an event: its key has a dead-letter queue; it
    is about something erased."""

    queued: bool
    erased: bool


@dataclass
class ConsumerSettings:
    group_id: str
    max_attempts: int = 4
    backoff_seconds: float = 0.2
    # The most records one poll hands to one transaction (see ``handle_batch``).
    batch_size: int = 100
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
                batch=True,
                max_records=self._settings.batch_size,
                # getmany's wait when nothing is buffered; FastStream sleeps as long again after
                # an empty poll, so this bounds the idle loop's added latency.
                batch_timeout_ms=50,
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
            await self.handle_batch(topic, routes, message.raw_message)

        return consume

    async def handle_batch(
        self, topic: str, routes: dict[str, _Route], records: Sequence[ConsumerRecord[Any, Any]]
    ) -> None:
        """One poll's records, in order; FastStream commits their offsets once, after this returns.

        The events to handle go through ONE transaction: the inbox rows and the handlers' writes
        of all of them commit together (a transaction and an offset commit per event were most
        of an event's cost). If anything in it fails, it is rolled back and its events are
        handled again one at a time (``_handle``: retries, outages waited out, dead letters), so
        an event is never dead-lettered for a neighbour's fault. A poison record splits the
        batch: the events before it are handled first, so nothing overtakes its dead letter."""
        # Unbound here, not after the batch: FastStream logs "Processed" after this returns,
        # and that line should carry the last event's correlation id.
        structlog.contextvars.unbind_contextvars("correlation_id", "event_id", "event_type")
        run: list[_Ready] = []
        try:
            for record in records:
                consumed = _consumed(topic, record)
                try:
                    ready = self._read(consumed, routes)
                except ValidationError as exc:
                    await self._flush(run)
                    run = []
                    await self._dead_letter(consumed, PermanentError(_describe(exc)), 0)
                    continue
                if ready is not None:
                    run.append(ready)
            await self._flush(run)
        finally:
            self._stop_waiting()

    def _read(self, consumed: ConsumedRecord, routes: dict[str, _Route]) -> _Ready | None:
        """The record's envelope and route, or None for an event this service does not handle.
        Most records on a topic are such events: the relay's event-type header tells so
        without parsing the body (a record without the header is parsed, as before)."""
        if consumed.headers.get("event_type", "") not in ("", *routes):
            self._metrics.messages.labels(consumed.topic, "ignored").inc()
            return None
        raw = RawEnvelope.model_validate_json(consumed.body)
        route = routes.get(raw.event_type)
        if route is None:
            self._metrics.messages.labels(consumed.topic, "ignored").inc()
            return None
        return _Ready(replace(consumed, event_id=str(raw.event_id), event_type=raw.event_type), raw, route)

    async def _flush(self, run: list[_Ready]) -> None:
        if len(run) > 1 and await self._apply_batch(run):
            return
        for ready in run:
            await self._handle(ready)

    async def _apply_batch(self, run: list[_Ready]) -> bool:
        """All of ``run`` in one transaction; False (rolled back) if any of it failed."""
        started = time.perf_counter()
        try:
            await self._prefetch_keys(run)
            events = [await self._open_unless_erased(ready) for ready in run]
            async with self._pool().acquire() as conn, conn.transaction():
                checks = await self._check_batch(conn, run, events)
                outcomes = [
                    "erased" if event is None else await self._apply(conn, ready, event, check)
                    for ready, event, check in zip(run, events, checks, strict=True)
                ]
        except Exception as exc:
            log.info(
                "batch rolled back: its events are handled one at a time",
                topic=run[0].consumed.topic,
                events=len(run),
                error=describe_error(exc),
            )
            return False
        elapsed = (time.perf_counter() - started) / len(run)
        for ready, outcome in zip(run, outcomes, strict=True):
            self._done(ready, outcome, elapsed)
        return True

    async def _check_batch(
        self, conn: asyncpg.Connection, run: list[_Ready], events: list[Envelope[Any] | None]
    ) -> list[_Checked | None]:
        """The batch's dead-letter queues and tombstones in two statements, not three per event.
        A batch carrying an erasure checks each event on its own: the erasure's tombstone,
        written inside the batch, must stop the events after it."""
        if any(ready.raw.event_type in _ALWAYS_HANDLED for ready in run):
            return [None] * len(run)
        topic = run[0].consumed.topic
        keys = [ready.consumed.key for ready in run if ready.consumed.key is not None]
        queued = await dead_letters.keys_with_queue(conn, self._settings.group_id, topic, keys) if keys else set()
        erased = await erased_among(conn, [(ready.raw.subject, ready.raw.payload) for ready in run])
        return [
            None if event is None else _Checked(ready.consumed.key in queued, gone)
            for ready, event, gone in zip(run, events, erased, strict=True)
        ]

    async def _prefetch_keys(self, run: list[_Ready]) -> None:
        """The batch's data keys in one round trip, not one per new caregiver."""
        keys = self._keys()
        if keys is not None:
            wanted = {key_id: ready.raw.subject for ready in run for key_id in sealing.key_ids(ready.raw.payload)}
            await keys.prefetch(wanted)

    async def _open_unless_erased(self, ready: _Ready) -> Envelope[Any] | None:
        try:
            return await self._open(ready.raw, ready.route)
        except KeyErased:
            return None

    async def _open(self, raw: RawEnvelope, route: _Route) -> Envelope[Any]:
        """The typed event, its sealed signal decrypted. The envelope is valid already: only
        the payload needs its type. Fetching a key may fail as an outage (waited out)."""
        _bind(raw)  # the key fetch's own log lines carry the event's ids too
        keys = self._keys()
        try:
            payload = raw.payload if keys is None else await sealing.open_payload(raw.payload, keys, raw.subject)
            return raw.model_copy(update={"payload": route.payload.model_validate(payload)})
        except ValidationError as exc:
            raise _Unreadable(_describe(exc, "payload")) from exc
        except CryptoError as exc:  # tampered with, or not an envelope: never readable
            raise _Unreadable(str(exc)) from exc

    async def _handle(self, ready: _Ready) -> None:
        """One event in a transaction of its own, retried until it is handled or dead-lettered."""
        consumed, raw, route = ready
        topic = consumed.topic
        started = time.perf_counter()
        attempts = 0
        first_failure = 0.0
        outages = 0
        while True:
            try:
                event = await self._open(raw, route)
                async with self._pool().acquire() as conn, conn.transaction():
                    outcome = await self._apply(conn, ready, event)
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
            self._done(ready, outcome, time.perf_counter() - started)
            return

    def _done(self, ready: _Ready, outcome: str, seconds: float) -> None:
        """After the commit: count the outcome; a handled erasure also empties the key cache."""
        if outcome == "processed" and ready.raw.event_type == EventType.CAREGIVER_ERASED:
            keys = self._keys()
            if keys is not None:
                keys.forget_subject(ready.raw.subject)
        self._metrics.messages.labels(ready.consumed.topic, outcome).inc()
        self._metrics.handle_seconds.labels(ready.consumed.topic).observe(seconds)

    async def _apply(
        self, conn: asyncpg.Connection, ready: _Ready, event: Envelope[Any], checked: _Checked | None = None
    ) -> str:
        """Inside the caller's transaction: park, drop as erased, skip as duplicate, or handle.
        ``checked``: what ``_check_batch`` found for it (otherwise asked here)."""
        consumed, raw, route = ready
        _bind(raw)
        consumer = self._settings.group_id
        queued = checked is None or checked.queued
        if consumed.key is not None and event.event_type not in _ALWAYS_HANDLED and queued:
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
        if event.event_type not in _ALWAYS_HANDLED and (
            checked.erased if checked is not None else await is_erased(conn, event.subject, raw.payload)
        ):
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
        await route.handler(conn, event)
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
        """Each topic's lane (alive = its consume task runs) and the records held waiting."""
        ok = True
        report: dict[str, Any] = {}
        now = time.time()
        for topic, subscriber in self._subscribers.items():
            tasks = list(getattr(subscriber, "tasks", []))
            alive = sum(not task.done() for task in tasks)
            ok = ok and alive >= 1
            report[topic] = {
                "lanes": 1,
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
        """Set the lag gauge from the lane's own consumer's view (no broker round trip)."""
        for topic, subscriber in self._subscribers.items():
            member = getattr(subscriber, "consumer", None)
            if member is not None:
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


def _bind(raw: RawEnvelope) -> None:
    """Every log line from here on, ours and the libraries', names this event."""
    structlog.contextvars.bind_contextvars(
        correlation_id=raw.correlation_id, event_id=str(raw.event_id), event_type=raw.event_type
    )


def _consumed(topic: str, record: ConsumerRecord[Any, Any]) -> ConsumedRecord:
    return ConsumedRecord(
        topic=topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key.decode(errors="replace") if record.key else None,
        headers={k: v.decode(errors="replace") for k, v in (record.headers or ())},
        body=record.value or b"",
    )
