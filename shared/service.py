"""The application shell every service shares: a plain FastAPI app whose lifespan applies
migrations, opens the pool, ensures topics, starts the broker, the outbox relay and any
background workers, and stops them in reverse order on shutdown. It serves ``/healthz``
and ``/metrics``; the service adds its own routers and handlers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import asyncpg
import structlog
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from faststream.kafka import KafkaBroker
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from shared.config import ServiceSettings
from shared.consumer import ConsumerSettings, EventConsumer
from shared.db import create_pool, migrate
from shared.kafka import create_broker, ensure_topics, start_broker, with_dlqs
from shared.logging import configure_logging
from shared.metrics import Metrics
from shared.outbox import OutboxRelay, replay_retained

log = structlog.get_logger(__name__)


class Worker(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


@dataclass
class Runtime:
    """What handlers and routes of one service process share."""

    settings: ServiceSettings
    broker: KafkaBroker
    metrics: Metrics
    consumer: EventConsumer
    _pool: asyncpg.Pool | None = None
    workers: list[Worker] = field(default_factory=list)

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("database pool is not open yet")
        return self._pool


def create_runtime(settings: ServiceSettings) -> Runtime:
    broker = create_broker(
        settings.kafka, client_id=settings.service_name,
        graceful_timeout=settings.shutdown_grace_seconds,
    )
    metrics = Metrics(settings.service_name)
    runtime = Runtime(settings=settings, broker=broker, metrics=metrics, consumer=None)  # type: ignore[arg-type]
    runtime.consumer = EventConsumer(
        broker,
        lambda: runtime.pool,
        metrics,
        ConsumerSettings(
            group_id=settings.service_name,
            max_attempts=settings.consumer_max_attempts,
            backoff_seconds=settings.consumer_retry_backoff_seconds,
            workers=settings.consumer_workers,
        ),
    )
    return runtime


def create_service_app(
    runtime: Runtime,
    *,
    title: str,
    migrations: Path,
    produces: Sequence[str],
    workers: Sequence[Callable[[Runtime], Worker]] = (),
    description: str = "",
) -> FastAPI:
    settings = runtime.settings
    configure_logging(settings.service_name, settings.log_format, settings.log_level)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await migrate(settings.database_url, migrations)
        runtime._pool = await create_pool(settings.database_url, size=settings.database_pool_size)
        await ensure_topics(settings.kafka, with_dlqs([*produces, *runtime.consumer.topics]))
        if settings.outbox_replay_on_start:
            replayed = await replay_retained(runtime.pool)
            log.info("outbox replayed onto a fresh broker", events=replayed)
        await start_broker(runtime.broker)
        relay = OutboxRelay(
            runtime.pool, runtime.broker, runtime.metrics,
            batch_size=settings.outbox_batch_size, poll_seconds=settings.outbox_poll_seconds,
            retention_hours=settings.outbox_retention_hours,
        )
        started: list[Worker] = []
        for worker in [relay, *(make(runtime) for make in workers)]:
            await worker.start()
            started.append(worker)
        log.info("service started", host=settings.host, port=settings.port)
        try:
            yield
        finally:
            log.info("service stopping")
            # Stop consuming first (an in-flight event finishes and commits within the grace
            # period; one cut off is redelivered), then the workers (the relay publishes what
            # it holds), then the producer and the pool.
            for subscriber in runtime.broker.subscribers:
                with contextlib.suppress(Exception):
                    await subscriber.stop()
            for worker in reversed(started):
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(worker.stop(), settings.shutdown_grace_seconds)
            await runtime.broker.stop()
            await runtime.pool.close()
            runtime._pool = None
            log.info("service stopped")

    app = FastAPI(title=title, description=description, lifespan=lifespan, version="1.0.0")
    app.state.runtime = runtime

    @app.middleware("http")
    async def observe_requests(request: Request, call_next: Any) -> Response:
        structlog.contextvars.unbind_contextvars("correlation_id")
        if correlation_id := request.headers.get("x-correlation-id"):
            structlog.contextvars.bind_contextvars(correlation_id=correlation_id[:200])
        response = await call_next(request)
        route = request.scope.get("route")
        runtime.metrics.http_requests.labels(
            request.method, getattr(route, "path", "unmatched"), str(response.status_code)
        ).inc()
        return response

    @app.get("/healthz", tags=["operations"], summary="Ready when broker and database are up")
    async def healthz() -> JSONResponse:
        checks = {"database": "down", "broker": "down"}
        with contextlib.suppress(Exception):
            await asyncio.wait_for(runtime.pool.fetchval("SELECT 1"), 2)
            checks["database"] = "up"
        with contextlib.suppress(Exception):
            if await runtime.broker.ping(timeout=2):
                checks["broker"] = "up"
        ok = all(v == "up" for v in checks.values())
        return JSONResponse(
            {"status": "ok" if ok else "unavailable", "service": settings.service_name, **checks},
            status_code=200 if ok else 503,
        )

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics")
    async def metrics() -> Response:
        with contextlib.suppress(Exception):
            runtime.metrics.outbox_pending.set(
                await runtime.pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            )
        return Response(generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


def serve(app: FastAPI, settings: ServiceSettings) -> None:
    import uvicorn

    uvicorn.run(
        app, host=settings.host, port=settings.port, log_config=None,
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds),
    )


def run_service(name: str, description: str, settings_cls: type[ServiceSettings],
                create_app: Callable[[Any], FastAPI]) -> None:
    """Entry point of ``python -m services.<name>.main``: ``--help``, then serve."""
    import argparse

    argparse.ArgumentParser(
        prog=f"python -m services.{name}.main",
        description=f"{description} Configured by {name.upper()}_* and KAFKA_* environment variables "
        "(see README.md).",
    ).parse_args()
    settings = settings_cls()
    serve(create_app(settings), settings)
