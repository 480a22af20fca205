"""The municipalities' API: their anonymised stream (Server-Sent Events, webhooks), their
statistics, and the stream's AsyncAPI document.

A municipality authenticates with its own credential (``Authorization: Bearer <key>``,
issued by ``python -m services.signals.cli issue-municipality-key``); partner API keys do
not open it, and a credential opens only its own municipality's paths: any other code is
403, never data."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated
from uuid import UUID

from fastapi import (
    APIRouter,
    Depends,
    Header,
    HTTPException,
    Path,
    Query,
    Request,
    status,
)
from fastapi.responses import Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AnyHttpUrl, BaseModel, Field

from services.signals.config import SignalsSettings
from services.signals.municipalities import reports, repository
from services.signals.municipalities.anonymise import week_start
from services.signals.municipalities.stream import server_sent_events
from shared.service import Runtime

MAX_MONTHS = 36

municipal_bearer = HTTPBearer(
    auto_error=False, scheme_name="MunicipalityKey", description="The municipality's own credential"
)
MunicipalityCode = Annotated[str, Path(pattern=r"^GM\d{4}$", examples=["GM0327"])]


def _runtime(request: Request) -> Runtime:
    return request.app.state.runtime


async def authorise(
    code: MunicipalityCode, request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(municipal_bearer)],
) -> str:
    """The municipality of the path, if the credential is that municipality's."""
    unauthorised = HTTPException(
        status.HTTP_401_UNAUTHORIZED, "missing or invalid municipality credential",
        headers={"WWW-Authenticate": "Bearer"},
    )
    if credentials is None or not credentials.credentials:
        raise unauthorised
    async with _runtime(request).pool.acquire() as conn:
        own = await repository.municipality_for_key(conn, credentials.credentials)
    if own is None:
        raise unauthorised
    if own != code:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this credential is for another municipality")
    return code


Municipality = Annotated[str, Depends(authorise)]
router = APIRouter(prefix="/v1/municipalities/{code}", tags=["municipalities"],
                   responses={401: {"description": "Missing or invalid municipality credential"},
                              403: {"description": "The credential is another municipality's"}})


@router.get(
    "/events",
    summary="The municipality's anonymised stream as Server-Sent Events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": (
        "One SSE event per anonymised event: `id` is its sequence number in the stream, `event` "
        "its type, `data` the JSON envelope (schema: /asyncapi.json)")}},
)
async def events(
    code: Municipality, request: Request,
    since: Annotated[datetime | None, Query(
        description="replay from the start of this date's ISO week (the stream's time resolution)")] = None,
    last_event_id: Annotated[int | None, Header(ge=0, description="resume after this sequence number")] = None,
) -> StreamingResponse:
    runtime = _runtime(request)
    settings: SignalsSettings = runtime.settings  # type: ignore[assignment]
    if last_event_id is not None:
        cursor = last_event_id
    else:
        # Only whole weeks: replaying from an exact moment would let a client bisect an
        # event's exact time, which the stream never gives.
        cursor = await repository.last_seq_before(runtime.pool, code, week_start(since) if since else None)
    return StreamingResponse(
        server_sent_events(runtime.pool, code, cursor, poll_seconds=settings.sse_poll_seconds,
                           keepalive_seconds=settings.sse_keepalive_seconds,
                           stopping=request.app.state.sse_stopping),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


class WebhookIn(BaseModel):
    url: AnyHttpUrl
    secret: str = Field(min_length=16, max_length=200, description="signs every delivery")
    since: datetime | None = Field(
        None, description="deliver from the start of this moment's ISO week; default: new events only")


class WebhookOut(BaseModel):
    id: UUID
    url: str
    delivered_seq: int = Field(description="the last sequence number delivered")
    attempts: int = Field(description="failed attempts at the next event")
    last_error: str | None = None
    created_at: datetime


@router.post("/webhooks", status_code=status.HTTP_201_CREATED, response_model=WebhookOut,
             summary="Subscribe a webhook to the municipality's stream")
async def add_webhook(code: Municipality, webhook: WebhookIn, request: Request) -> WebhookOut:
    runtime = _runtime(request)
    settings: SignalsSettings = runtime.settings  # type: ignore[assignment]
    if webhook.url.scheme != "https" and not settings.webhook_allow_http:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "the webhook URL must use https")
    async with runtime.pool.acquire() as conn, conn.transaction():
        cursor = await repository.last_seq_before(conn, code, week_start(webhook.since) if webhook.since else None)
        row = await repository.add_webhook(conn, code, str(webhook.url), webhook.secret, cursor)
    return WebhookOut(**row)


@router.get("/webhooks", response_model=list[WebhookOut], summary="The municipality's webhooks")
async def list_webhooks(code: Municipality, request: Request) -> list[WebhookOut]:
    async with _runtime(request).pool.acquire() as conn:
        return [WebhookOut(**row) for row in await repository.webhooks_of(conn, code)]


@router.delete("/webhooks/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT,
               summary="Unsubscribe a webhook", responses={404: {"description": "No such webhook"}})
async def delete_webhook(code: Municipality, webhook_id: UUID, request: Request) -> Response:
    async with _runtime(request).pool.acquire() as conn:
        if not await repository.delete_webhook(conn, code, webhook_id):
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such webhook")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


Month = Annotated[str | None, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", examples=["2026-11"])]


def _months(first: str | None, last: str | None) -> list[date]:
    today = datetime.now(UTC).date()
    end = date.fromisoformat(f"{last}-01") if last else date(today.year, today.month, 1)
    start = date.fromisoformat(f"{first}-01") if first else date(end.year - 1, end.month, 1)
    months = reports.months_between(start, end)
    if not 1 <= len(months) <= MAX_MONTHS:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"'from' must not be after 'to', and at most {MAX_MONTHS} months apart")
    return months


@router.get("/statistics", response_model=reports.CountsReport,
            summary="Signals per month x district x source kind x risk level, suppressed and rounded")
async def statistics(
    code: Municipality, request: Request,
    first: Annotated[Month, Query(alias="from", description="first month; default: 12 months before 'to'")] = None,
    last: Annotated[Month, Query(alias="to", description="last month; default: this month")] = None,
) -> reports.CountsReport:
    months = _months(first, last)
    async with _runtime(request).pool.acquire() as conn:
        facts = await repository.counted_facts(conn, code, months[0], months[-1])
    return reports.counts_report(code, months, facts)


@router.get("/statistics/time-to-support", response_model=reports.TimeToSupportReport,
            summary="Percentiles of the hours from signal to match and to first contact, per month")
async def time_to_support(
    code: Municipality, request: Request,
    first: Annotated[Month, Query(alias="from", description="first month; default: 12 months before 'to'")] = None,
    last: Annotated[Month, Query(alias="to", description="last month; default: this month")] = None,
) -> reports.TimeToSupportReport:
    months = _months(first, last)
    async with _runtime(request).pool.acquire() as conn:
        facts = await repository.counted_facts(conn, code, months[0], months[-1])
    return reports.time_to_support_report(code, months, facts)
