"""The application shell every service shares: a FastAPI app (its API docs served offline:
shared/docs.py) whose lifespan applies migrations, opens the pool, ensures topics, starts the
broker, the outbox relay and any background workers, and stops them in reverse order on shutdown. It serves ``/healthz``
(database, broker, every consumer lane and every loop's heartbeat) and ``/metrics``, and
answers 503 with Retry-After when a dependency is away; the service adds its own routers
and handlers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import asyncpg
import structlog
from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from faststream.kafka import KafkaBroker
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from shared import operations
from shared.config import ServiceSettings
from shared.consumer import ConsumerSettings, EventConsumer
from shared.db import create_pool, migrate
from shared.docs import documented_app
from shared.http import (
    BodyLimitMiddleware,
    InternalListenerMiddleware,
    ObserveRequests,
    install_error_handlers,
    install_unavailable_handler,
)
from shared.kafka import create_broker, ensure_topics, start_broker, with_dlqs
from shared.keys import HttpKeySource
from shared.logging import configure_logging
from shared.metrics import Metrics
from shared.openapi import document_errors
from shared.outbox import OutboxRelay, replay_retained
from shared.retention import Purge, RetentionJob, shared_purges
from shared.sealing import KeySource
from shared.worker import Heartbeat

log = structlog.get_logger(__name__)

# The settings class of one service: Runtime[SignalsSettings] gives its handlers and routes
# `runtime.settings` as SignalsSettings, no cast.
SettingsT = TypeVar("SettingsT", bound=ServiceSettings)


class Worker(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


@dataclass
class Runtime(Generic[SettingsT]):
    """What handlers and routes of one service process share."""

    settings: SettingsT
    broker: KafkaBroker
    metrics: Metrics
    consumer: EventConsumer
    # Where consumed sealed signals get their data key: the key holder's endpoint, except in
    # the key holder itself (signals sets its own store).
    keys: KeySource | None = None
    _pool: asyncpg.Pool | None = None
    workers: list[Worker] = field(default_factory=list)
    # Gauges computed from the service's own tables when /metrics is scraped (backlogs,
    # capacity, deadlines): the database is the truth, so nothing drifts across restarts.
    metric_refreshers: list[Callable[[asyncpg.Pool], Awaitable[None]]] = field(default_factory=list)

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("database pool is not open yet")
        return self._pool


def create_runtime(settings: SettingsT) -> Runtime[SettingsT]:
    broker = create_broker(
        settings.kafka,
        client_id=settings.service_name,
        graceful_timeout=settings.shutdown_grace_seconds,
    )
    metrics = Metrics(settings.service_name)
    keys = HttpKeySource(settings.keys_url, settings.internal_token, settings.key_cache_seconds)
    # The consumer reads the pool and the keys through the runtime when it handles a record
    # (the pool opens in the lifespan; signals sets its own key store).
    runtime: Runtime[SettingsT]
    consumer = EventConsumer(
        broker,
        lambda: runtime.pool,
        metrics,
        ConsumerSettings(
            group_id=settings.service_name,
            max_attempts=settings.consumer_max_attempts,
            backoff_seconds=settings.consumer_retry_backoff_seconds,
            batch_size=settings.consumer_batch_size,
            dead_letter_after_seconds=settings.consumer_dead_letter_after_seconds,
            max_backoff_seconds=settings.consumer_max_backoff_seconds,
            fetch_max_wait_ms=settings.consumer_fetch_max_wait_ms,
        ),
        keys_getter=lambda: runtime.keys,
    )
    runtime = Runtime(settings=settings, broker=broker, metrics=metrics, consumer=consumer, keys=keys)
    return runtime


def create_service_app(
    runtime: Runtime[SettingsT],
    *,
    migrations: Path,
    produces: Sequence[str] = (),
    produces_patterns: Sequence[str] = (),
    workers: Sequence[Callable[[Runtime[SettingsT]], Worker]] = (),
    description: str = "",
    retention: Callable[[SettingsT], Sequence[Purge]] | None = None,
    on_startup: Sequence[Callable[[Runtime[SettingsT]], Awaitable[None]]] = (),
    on_shutdown: Sequence[Callable[[Runtime[SettingsT]], Awaitable[None]]] = (),
) -> FastAPI:
    """The application of the service ``runtime.settings.service_name`` names (its OpenAPI
    title is ``signal-to-support: <name>``). ``retention`` gives the service's own purges
    (``shared.retention``) from its settings; the retention job also runs the purges every
    service shares. ``on_startup`` hooks run
    once the database is migrated and the pool open, before topics are ensured and the relay
    starts (a topic the relay may replay onto must exist by then); ``on_shutdown`` hooks run
    first when the service stops, in reverse order, before consumers and workers stop."""
    settings = runtime.settings
    purges = [*shared_purges(settings), *(retention(settings) if retention else [])]
    configure_logging(settings.service_name, settings.log_format, settings.log_level)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await migrate(settings.database_url, migrations)
        runtime._pool = await create_pool(
            settings.database_url,
            size=settings.database_pool_size,
            acquire_timeout=settings.database_acquire_timeout_seconds,
        )
        for hook in on_startup:
            await hook(runtime)
        await ensure_topics(settings.kafka, with_dlqs([*produces, *runtime.consumer.topics]))
        if settings.outbox_replay_on_start:
            replayed = await replay_retained(runtime.pool)
            log.info("outbox replayed onto a fresh broker", events=replayed)
        await start_broker(runtime.broker)
        relay = OutboxRelay(
            runtime.pool,
            runtime.broker,
            runtime.metrics,
            batch_size=settings.outbox_batch_size,
            poll_seconds=settings.outbox_poll_seconds,
            retention_hours=settings.outbox_retention_hours,
        )
        started = runtime.workers = []
        retention_job = RetentionJob(lambda: runtime.pool, purges, settings.retention_check_seconds)
        to_start: list[Worker] = [relay, retention_job, *(make(runtime) for make in workers)]
        for worker in to_start:
            await worker.start()
            started.append(worker)
        log.info("service started", host=settings.host, port=settings.port)
        try:
            yield
        finally:
            log.info("service stopping")
            for hook in reversed(on_shutdown):
                with contextlib.suppress(Exception):
                    await hook(runtime)
            # Stop consuming first (an in-flight event finishes and commits within the grace
            # period; one cut off is redelivered), then the workers (the relay publishes what
            # it holds), then the producer and the pool. A record held during an outage is
            # let go uncommitted, to be redelivered.
            runtime.consumer.stop()
            for subscriber in runtime.broker.subscribers:
                with contextlib.suppress(Exception):
                    await subscriber.stop()
            for worker in reversed(started):
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(worker.stop(), settings.shutdown_grace_seconds)
            await runtime.broker.stop()
            if runtime.keys is not None:
                await runtime.keys.close()
            await runtime.pool.close()
            runtime._pool = None
            log.info("service stopped")

    title = f"signal-to-support: {settings.service_name}"
    app = documented_app(title=title, description=description, lifespan=lifespan, version="1.0.0")
    app.state.runtime = runtime
    # What the service publishes to, for the Kafka ACLs (deploy/kafka_acls.py); patterns are
    # topics made at run time, e.g. one per municipality ("municipality.{code}.events.v1").
    app.state.produces = tuple(produces)
    app.state.produces_patterns = tuple(produces_patterns)
    # Every endpoint of every service: no request body above the service's limit.
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_body_bytes)

    app.add_middleware(ObserveRequests, metrics=runtime.metrics)

    async def health() -> tuple[bool, dict[str, Any]]:
        checks = {"database": "down", "broker": "down"}
        with contextlib.suppress(Exception):
            await asyncio.wait_for(runtime.pool.fetchval("SELECT 1"), 2)
            checks["database"] = "up"
        with contextlib.suppress(Exception):
            if await runtime.broker.ping(timeout=2):
                checks["broker"] = "up"
        lanes_ok, consumers = runtime.consumer.health()
        # Every loop that beats (the relay, Periodic workers, any worker with a heartbeat).
        loops = {beat.name: beat.report() for beat in _heartbeats(runtime.workers)}
        ok = all(v == "up" for v in checks.values()) and lanes_ok and all(v["alive"] for v in loops.values())
        return ok, {
            "status": "ok" if ok else "unavailable",
            "service": settings.service_name,
            **checks,
            "consumers": consumers,
            "loops": loops,
        }

    @app.get(
        "/healthz",
        tags=["operations"],
        summary="Ready when broker and database are up and every consumer lane and loop runs",
        responses={
            503: {
                "description": "Not ready: the same report, naming what is down",
                "content": {"application/json": {"schema": {"type": "object"}}},
            }
        },
    )
    async def healthz() -> JSONResponse:
        ok, report = await health()
        return JSONResponse(report, status_code=200 if ok else 503)

    @app.get(
        "/metrics",
        tags=["operations"],
        summary="Prometheus metrics",
        response_class=PlainTextResponse,
        responses={200: {"description": "Prometheus text exposition format"}},
    )
    async def metrics() -> Response:
        # Readiness as /healthz judges it, so alerts see "up but not ready" too.
        runtime.metrics.ready.set(1 if (await health())[0] else 0)
        await _refresh_gauges(runtime)
        return Response(generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app.include_router(operations.router)
    install_unavailable_handler(app)
    install_error_handlers(app)
    document_errors(app)
    return app


async def _refresh_gauges(runtime: Runtime[Any]) -> None:
    """The gauges read from the service's own tables and consumer when /metrics is scraped.
    A database away shows on /healthz, not here: each part that fails keeps its last value."""
    with contextlib.suppress(Exception):
        pending = await runtime.pool.fetchrow(
            """SELECT count(*) AS n, COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0) AS age
               FROM outbox WHERE published_at IS NULL"""
        )
        runtime.metrics.outbox_pending.set(pending["n"])
        runtime.metrics.outbox_oldest_age.set(float(pending["age"]))
    with contextlib.suppress(Exception):
        for status, count in (await operations.unresolved_counts(runtime.pool)).items():
            runtime.metrics.dead_letters.labels(status).set(count)
    for refresh in runtime.metric_refreshers:
        with contextlib.suppress(Exception):
            await refresh(runtime.pool)
    with contextlib.suppress(Exception):
        await runtime.consumer.update_lag()


def _heartbeats(workers: Sequence[Worker]) -> list[Heartbeat]:
    return [beat for worker in workers if isinstance(beat := getattr(worker, "heartbeat", None), Heartbeat)]


def serve(app: FastAPI, settings: ServiceSettings) -> None:
    """Serve on the public port and, when ``internal_port`` is set, on the internal one too:
    one server, one lifespan, two sockets; internal paths answer only on the internal one."""
    import uvicorn

    options: dict[str, Any] = {"log_config": None, "timeout_graceful_shutdown": int(settings.shutdown_grace_seconds)}
    if settings.internal_port is None:
        uvicorn.run(app, host=settings.host, port=settings.port, **options)
        return
    if settings.internal_port == settings.port:
        raise SystemExit(f"{settings.env_name('internal_port')} must differ from {settings.env_name('port')}")
    config = uvicorn.Config(
        InternalListenerMiddleware(app, settings.internal_port), host=settings.host, port=settings.port, **options
    )
    internal = uvicorn.Config(
        app, host=settings.internal_host or settings.host, port=settings.internal_port, log_config=None
    )  # uvicorn's own would print plain text
    sockets = [config.bind_socket(), internal.bind_socket()]
    log.info("internal listener", host=internal.host, port=internal.port)
    uvicorn.Server(config).run(sockets=sockets)


def run_service(
    name: str, description: str, settings_cls: type[SettingsT], create_app: Callable[[SettingsT], FastAPI]
) -> None:
    """Entry point of ``python -m services.<name>.main``: ``--help``, then serve."""
    import argparse

    argparse.ArgumentParser(
        prog=f"python -m services.{name}.main",
        description=f"{description} Configured by {name.upper()}_* and KAFKA_* environment variables (see README.md).",
    ).parse_args()
    settings = load_settings(settings_cls)
    serve(create_app(settings), settings)


def load_settings(settings_cls: type[SettingsT]) -> SettingsT:
    """The settings from the environment, or exit with one line per wrong variable (no
    traceback): a value that does not parse, or what production refuses (``STS_ENV``)."""
    import sys

    from pydantic import ValidationError

    try:
        settings = settings_cls()
    except ValidationError as exc:
        prefix = str(settings_cls.model_config.get("env_prefix", ""))
        problems = [f"{_variable(prefix, e['loc'])}: {e['msg']}" for e in exc.errors()]
    else:
        problems = settings.production_problems()
        if not problems:
            return settings
    for problem in problems:
        print(f"{settings_cls.__name__}: cannot start: {problem}", file=sys.stderr)
    raise SystemExit(2)


def _variable(prefix: str, loc: tuple[Any, ...]) -> str:
    if not loc:
        return f"{prefix}* settings"
    if loc[0] == "kafka":
        return "KAFKA_" + "_".join(map(str, loc[1:])).upper()
    return prefix + "_".join(map(str, loc)).upper()
