"""HTTP pieces the APIs share: a streaming body-size limit, readable validation errors, 503
with Retry-After (never a 500) when the database or broker is unavailable, the split between
the public listener and the internal one (metrics, API documentation, /internal), and the
reading of a page's urlencoded form. Every error body is one of ``shared.openapi``'s models, which
the OpenAPI documents."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import parse_qs

import asyncpg
import structlog
from aiokafka.errors import KafkaError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.failures import is_infrastructure_failure
from shared.logging import describe_error
from shared.metrics import Metrics
from shared.openapi import problem

log = structlog.get_logger(__name__)

RETRY_AFTER_SECONDS = 5


class BodyLimitMiddleware:
    """Answer 413 once a request body exceeds ``limit`` bytes, counted as it streams in.

    Content-Length is not trusted (it may be absent or lie); the body is read up to the
    limit and then replayed to the application."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                response = JSONResponse(
                    problem(413, f"request body is larger than {self.limit} bytes"), status_code=413
                )
                await response(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


class ObserveRequests:
    """Counts and times every request by method, route template and status, and binds the
    caller's X-Correlation-Id to the request's log lines. Plain ASGI: Starlette's
    ``BaseHTTPMiddleware`` runs the app in a task of its own and copies each response through a
    stream, which was a sizeable share of a request's cost (py-spy, signals under ingest)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        structlog.contextvars.unbind_contextvars("correlation_id")
        for name, value in scope["headers"]:
            if name == b"x-correlation-id":
                structlog.contextvars.bind_contextvars(correlation_id=value.decode("latin-1")[:200])
        started = time.perf_counter()
        status = 500  # what the client gets if the app raises before it answers

        async def observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observed)
        finally:
            # The router writes the matched route into the scope it was given: this one.
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.http_requests.labels(scope["method"], route, str(status)).inc()
            self.metrics.http_seconds.labels(scope["method"], route).observe(time.perf_counter() - started)


# Served only on the internal listener when a service has one (``<P>_INTERNAL_PORT``): the
# proxy never routes them, and the public port answers 404 as if they did not exist.
INTERNAL_PATHS = ("/metrics", "/docs", "/openapi.json", "/asyncapi", "/asyncapi.json", "/internal")


def is_internal_path(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in INTERNAL_PATHS)


class InternalListenerMiddleware:
    """Answers 404 for internal paths unless the request came in on the internal port.

    One server listens on both sockets (one lifespan, one shutdown); the port a request
    arrived on is the local address of its connection (``scope["server"]``), which a client
    cannot forge with a header."""

    def __init__(self, app: ASGIApp, internal_port: int) -> None:
        self.app = app
        self.internal_port = internal_port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and is_internal_path(scope["path"]):
            server = scope.get("server")
            if not server or server[1] != self.internal_port:
                await JSONResponse(problem(404, "Not Found"), status_code=404)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    return ".".join(parts) or "body"


def install_unavailable_handler(app: FastAPI) -> None:
    """Admission control: a request that meets an outage (database or its pool, broker) is
    answered 503 with Retry-After; nothing was committed, so a retry (with the same
    Idempotency-Key) is safe. Every other error keeps its normal path."""

    async def unavailable(request: Request, exc: Exception) -> JSONResponse:
        if not is_infrastructure_failure(exc):
            raise exc
        log.warning("request refused: a dependency is unavailable", path=request.url.path, error=describe_error(exc))
        return JSONResponse(
            {
                "error": "service_unavailable",
                "detail": "the service cannot reach its database or broker right now; nothing was "
                f"stored: retry after {RETRY_AFTER_SECONDS} seconds (with the same Idempotency-Key)",
            },
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    for kind in (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, KafkaError):
        app.add_exception_handler(kind, unavailable)


def install_error_handlers(app: FastAPI) -> None:
    """The error bodies of ``shared.openapi``: every invalid field named (422), and ``Problem``
    for every other refusal, its headers kept (``WWW-Authenticate``, ``Retry-After``)."""

    @app.exception_handler(StarletteHTTPException)
    async def refused(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(_allowed_methods(request))
        return JSONResponse(problem(exc.status_code, str(exc.detail)), status_code=exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for err in exc.errors():
            entry = {"field": _field(tuple(err["loc"])), "message": err["msg"], "type": err["type"]}
            if "input" in err and err["type"] == "extra_forbidden":
                entry["message"] = "unknown field"
            errors.append(entry)
        return JSONResponse(
            {"error": "validation_failed", "detail": json.loads(json.dumps(errors, default=str))},
            status_code=422,
        )


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path (Starlette's own 405 names only the first
    route's, while a path often has one route per method)."""
    return sorted(
        {
            method
            for route in request.app.routes
            if isinstance(route, APIRoute) and route.matches(request.scope)[0] is not Match.NONE
            for method in route.methods or ()
        }
    )


async def form_fields(request: Request) -> dict[str, list[str]]:
    """A plain urlencoded form (what server-rendered pages post), every value of every field;
    parsed here rather than adding a multipart dependency."""
    return parse_qs((await request.body()).decode(errors="replace"), keep_blank_values=True)
