"""The municipalities' API: their released groups (Server-Sent Events, webhooks), their
statistics over closed months, and the stream's AsyncAPI document; ``create_app`` builds
the service.

A municipality authenticates with its own credential (``Authorization: Bearer <key>``,
issued by ``python -m services.municipalities.cli issue-key``); partner API keys do
not open it, and a credential opens only its own municipality's paths: any other code is
403, never data."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path as FilePath
from typing import Annotated
from uuid import UUID

import structlog
from fastapi import (
    APIRouter,
    Depends,
    FastAPI,
    Header,
    HTTPException,
    Path,
    Query,
    status,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response, StreamingResponse
from pydantic import AnyHttpUrl, BaseModel, Field

from services.municipalities import reports, service
from services.municipalities.asyncapi import asyncapi_router
from services.municipalities.config import MunicipalitiesSettings
from services.municipalities.contract import TOPIC_PATTERN, topic_for
from services.municipalities.dependencies import Context, MunicipalitiesContext
from services.municipalities.districts import MUNICIPALITIES, is_known
from services.municipalities.handlers import register_handlers
from services.municipalities.release import ReleaseWorker
from services.municipalities.service import MunicipalitiesUnitOfWork
from services.municipalities.stream import WebhookDelivery, server_sent_events
from shared import municipality_codes, webhooks
from shared.application import with_context
from shared.auth import Credential, Scope, bearer_credential
from shared.kafka import ensure_topics
from shared.openapi import credential_errors, error_responses
from shared.ratelimit import CappedStreamingResponse
from shared.service import Runtime, create_service_app

log = structlog.get_logger(__name__)

MIGRATIONS = FilePath(__file__).parent / "migrations"
MAX_MONTHS = 36
# A stream is never cached, nor buffered by a proxy in front.
SSE_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
DESCRIPTION = (
    "Anonymous data for municipalities: k-anonymous groups of records on Kafka, as Server-Sent Events "
    "and signed webhooks (schema: /asyncapi), and statistics over closed months."
)

# The schema lists the municipalities served here, which is what the API accepts.
MunicipalityCode = Annotated[
    str, Path(pattern=r"^GM\d{4}$", examples=["GM0327"], json_schema_extra={"enum": sorted(MUNICIPALITIES)})
]


def _start_of(day: date | None) -> datetime | None:
    return datetime(day.year, day.month, day.day, tzinfo=UTC) if day else None


municipal_credential = bearer_credential(
    Scope.MUNICIPALITY_READ, scheme_name="MunicipalityKey", what="municipality credential"
)


def _invalid(loc: tuple[str, str], message: str) -> RequestValidationError:
    return RequestValidationError([{"loc": loc, "msg": message, "type": "value_error"}])


async def authorise(
    code: MunicipalityCode,
    credential: Annotated[Credential, Depends(municipal_credential)],
) -> str:
    """The municipality of the path, if the credential is that municipality's."""
    if not municipality_codes.exists(code):
        raise _invalid(("path", "code"), f"{code} is not the CBS code of an existing Dutch municipality")
    if not is_known(code):
        raise _invalid(("path", "code"), f"{code} is not a municipality served here")
    if credential.subject != code:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this credential is for another municipality")
    return code


async def stream_owner(credential: Annotated[Credential, Depends(municipal_credential)]) -> str:
    return str(credential.id)


Municipality = Annotated[str, Depends(authorise)]
router = APIRouter(
    prefix="/v1/municipalities/{code}",
    tags=["municipalities"],
    responses=credential_errors(
        "municipality credential",
        "The credential is another municipality's",
        "Rate limit, or open streams, of this credential",
        {422: "Not an existing municipality (CBS list), not served here, or another field is invalid"},
    ),
)


@router.get(
    "/events",
    summary="The municipality's released groups as Server-Sent Events",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": (
                "One SSE event per released group: `id` is its sequence number in the stream, `event` "
                "its type, `data` the JSON envelope (schema: /asyncapi.json)"
            ),
        }
    },
)
async def events(
    code: Municipality,
    ctx: Context,
    owner: Annotated[str, Depends(stream_owner)],
    since: Annotated[date | None, Query(description="replay the groups released since this day")] = None,
    last_event_id: Annotated[int | None, Header(ge=0, description="resume after this sequence number")] = None,
) -> StreamingResponse:
    async with MunicipalitiesUnitOfWork.begin(ctx.pool) as uow:
        cursor = await service.stream_cursor(uow, code, last_event_id, _start_of(since))
    return _stream(ctx, code, cursor, owner)


def _stream(ctx: MunicipalitiesContext, code: str, cursor: int, owner: str) -> StreamingResponse:
    """The municipality's stream from ``cursor`` as an SSE response, counted against the
    credential's open streams (429 when it has them all open already) until it ends."""
    ctx.sse_cap.acquire(owner)
    stream = server_sent_events(
        ctx.pool,
        code,
        cursor,
        poll_seconds=ctx.settings.sse_poll_seconds,
        keepalive_seconds=ctx.settings.sse_keepalive_seconds,
        stopping=ctx.sse_stopping,
    )
    return CappedStreamingResponse(stream, ctx.sse_cap, owner, media_type="text/event-stream", headers=SSE_HEADERS)


class WebhookIn(BaseModel):
    url: AnyHttpUrl
    secret: str = Field(min_length=16, max_length=200, description="signs every delivery")
    since: date | None = Field(None, description="deliver the groups released since this day; default: new ones only")


class WebhookOut(BaseModel):
    id: UUID
    url: str
    delivered_seq: int = Field(description="the last sequence number delivered")
    attempts: int = Field(description="failed attempts at the next event")
    last_error: str | None = None
    created_at: datetime


@router.post(
    "/webhooks",
    status_code=status.HTTP_201_CREATED,
    response_model=WebhookOut,
    summary="Subscribe a webhook to the municipality's stream",
)
async def add_webhook(code: Municipality, webhook: WebhookIn, ctx: Context) -> WebhookOut:
    # Checked (DNS included) before the transaction: no connection is held meanwhile.
    try:
        await webhooks.check_url(str(webhook.url), allow_http_hosts=ctx.settings.webhook_allow_http_hosts)
    except webhooks.UnsafeWebhookURL as exc:
        log.info("webhook registration refused", municipality=code, reason=exc.reason)
        raise RequestValidationError([{"loc": ("body", "url"), "msg": str(exc), "type": "webhook_url"}]) from None
    async with MunicipalitiesUnitOfWork.begin(ctx.pool) as uow:
        hook = await service.add_webhook(uow, code, str(webhook.url), webhook.secret, _start_of(webhook.since))
    return WebhookOut(**asdict(hook))


@router.get("/webhooks", response_model=list[WebhookOut], summary="The municipality's webhooks")
async def list_webhooks(code: Municipality, ctx: Context) -> list[WebhookOut]:
    async with MunicipalitiesUnitOfWork.begin(ctx.pool) as uow:
        return [WebhookOut(**asdict(hook)) for hook in await service.webhooks(uow, code)]


@router.delete(
    "/webhooks/{webhook_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Unsubscribe a webhook",
    responses=error_responses({404: "No such webhook"}),
)
async def delete_webhook(code: Municipality, webhook_id: UUID, ctx: Context) -> Response:
    async with MunicipalitiesUnitOfWork.begin(ctx.pool) as uow:
        if not await service.delete_webhook(uow, code, webhook_id):
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such webhook")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


Month = Annotated[str | None, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", examples=["2026-11"])]


def _months(first: str | None, last: str | None) -> list[date]:
    today = datetime.now(UTC).date()
    end = date.fromisoformat(f"{last}-01") if last else date(today.year, today.month, 1)
    start = date.fromisoformat(f"{first}-01") if first else date(end.year - 1, end.month, 1)
    months = reports.months_between(start, end)
    if not 1 <= len(months) <= MAX_MONTHS:
        raise _invalid(("query", "from"), f"'from' must not be after 'to', and at most {MAX_MONTHS} months apart")
    return months


async def closed_months(
    code: Municipality,
    ctx: Context,
    first: Annotated[Month, Query(alias="from", description="first month; default: 12 months before 'to'")] = None,
    last: Annotated[Month, Query(alias="to", description="last month; default: this month")] = None,
) -> reports.ClosedMonths:
    """The released groups of each closed month asked for, and the months still open."""
    months = _months(first, last)
    async with MunicipalitiesUnitOfWork.begin(ctx.pool) as uow:
        return await service.closed_months(
            uow, code, months, datetime.now(UTC), timedelta(seconds=ctx.settings.max_delay_seconds)
        )


ClosedMonths = Annotated[reports.ClosedMonths, Depends(closed_months)]


@router.get(
    "/statistics",
    response_model=reports.CountsReport,
    summary="Screened signals per closed month x district x source kind x risk level",
)
async def statistics(code: Municipality, closed: ClosedMonths) -> reports.CountsReport:
    return reports.counts_report(code, closed)


@router.get(
    "/statistics/outcomes",
    response_model=reports.OutcomesReport,
    summary="Per closed month: time to support, referrals accepted, support arrived, no-match reasons, target groups",
)
async def outcomes(code: Municipality, closed: ClosedMonths) -> reports.OutcomesReport:
    return reports.outcomes_report(code, closed)


async def _ensure_topics(runtime: Runtime[MunicipalitiesSettings]) -> None:
    """The municipalities' topics exist before the shell starts its relay (which may replay
    retained releases onto a fresh broker). Only the municipalities served here get a
    topic: an unknown code never makes one."""
    await ensure_topics(runtime.settings.kafka, [topic_for(code) for code in sorted(MUNICIPALITIES)])


def create_app(settings: MunicipalitiesSettings | None = None) -> FastAPI:
    ctx = MunicipalitiesContext.create(settings or MunicipalitiesSettings())
    register_handlers(ctx.runtime.consumer)
    app = _shell(ctx)
    return with_context(app, ctx, router, asyncapi_router(ctx.settings.kafka, app.version))


def _shell(ctx: MunicipalitiesContext) -> FastAPI:
    """The shared shell with the release and webhook workers; the topics made first, and open
    streams ended by a stop signal."""
    return create_service_app(
        ctx.runtime,
        description=DESCRIPTION,
        migrations=MIGRATIONS,
        produces_patterns=[TOPIC_PATTERN],
        workers=[ReleaseWorker, WebhookDelivery],
        on_startup=[_ensure_topics, ctx.stop_signals.install],
        on_shutdown=[ctx.stop_signals.restore],
    )
