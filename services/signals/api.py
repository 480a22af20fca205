"""The ingest API: partner organisations post signals, follow their referral's status and
withdraw their signals; the privacy officer erases a person (see ``erasure``)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Request, status
from fastapi import Path as FastAPIPath
from fastapi.responses import JSONResponse

from services.signals import domain, pages, repository, service
from services.signals.config import SignalsSettings
from services.signals.dependencies import (
    Context,
    ErasureActor,
    ErasureRequester,
    Partner,
    SignalsContext,
    partner,
)
from services.signals.domain import Stage
from services.signals.handlers import register_handlers
from services.signals.schemas import (
    Accepted,
    DataKey,
    DataKeyRequest,
    DataKeys,
    ErasureAccepted,
    ErasureIn,
    ErasureStatus,
    SignalIn,
    SignalStatus,
)
from services.signals.service import SignalsUnitOfWork
from shared.application import with_context
from shared.auth import Scope
from shared.contracts import Topics
from shared.instruments import Instrument, load_catalogue
from shared.internal import require_internal
from shared.openapi import FieldProblem, ValidationProblem, error_responses
from shared.service import create_runtime, create_service_app
from shared.worker import Periodic

MIGRATIONS = Path(__file__).parent / "migrations"


router = APIRouter(prefix="/v1", tags=["signals"])

# Nothing was stored: the first request with this key had another body.
IDEMPOTENCY_CONFLICT = ValidationProblem(
    error="idempotency_key_reused",
    detail=[
        FieldProblem(
            field="Idempotency-Key",
            message="this key was already used with a different request body",
            type="idempotency_conflict",
        )
    ],
).model_dump()


@router.post(
    "/signals",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    summary="Post a signal about a caregiver who may be overburdened",
    responses=error_responses(
        {
            401: "Missing, invalid, revoked or expired API key",
            403: "The key lacks the 'ingest' scope",
            413: "Body larger than 64 KiB",
            429: "The key's rate limit is reached: retry after Retry-After seconds",
            422: "A field is invalid (also a source kind the organisation may not post as), "
            "or the Idempotency-Key was used with another body",
            503: "The database or broker is unavailable; nothing was stored: retry after "
            "Retry-After seconds with the same Idempotency-Key",
        }
    ),
)
async def post_signal(
    signal: SignalIn,
    request: Request,
    context: Context,
    caller: Annotated[Partner, partner(Scope.INGEST)],
    idempotency_key: Annotated[
        str | None, Header(max_length=200, description="Retries with the same key return the first answer")
    ] = None,
    x_correlation_id: Annotated[str | None, Header(max_length=200)] = None,
) -> JSONResponse:
    async with SignalsUnitOfWork.begin(context.pool) as uow:
        intake = await service.intake_signal(
            uow,
            context.settings,
            context.keyring,
            caller.organisation,
            signal,
            actor=caller.actor,
            idempotency_key=idempotency_key,
            correlation_id=x_correlation_id,
        )
    if intake.conflict:
        return JSONResponse(IDEMPOTENCY_CONFLICT, status_code=422)
    return _accepted(request, intake.signal_id)


def _accepted(request: Request, signal_id: UUID) -> JSONResponse:
    body = Accepted(
        id=signal_id,
        status=Stage.RECEIVED,
        status_url=str(request.url_for("get_signal", signal_id=signal_id)),
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=status.HTTP_202_ACCEPTED)


@router.get(
    "/signals/{signal_id}",
    response_model=SignalStatus,
    name="get_signal",
    summary="The referral's status, timeline and outcome of each stage",
    responses=error_responses({404: "No such signal for this organisation"}),
)
async def get_signal(
    signal_id: UUID,
    context: Context,
    caller: Annotated[Partner, partner(Scope.READ_STATUS)],
) -> SignalStatus:
    async with SignalsUnitOfWork.begin(context.pool) as uow:
        found = await service.signal_status(uow, signal_id, caller.organisation.id, caller.actor)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such signal for this organisation")
    return domain.status_view(*found)


@router.post(
    "/erasures",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ErasureAccepted,
    tags=["erasure"],
    summary="Withdraw your organisation's signals about a caregiver, or (privacy officer) erase the person",
    description=(
        "Identify the caregiver as the signals did (name, birth year and postcode; or e-mail; or "
        "phone) or by signal ids. With a partner key, your organisation's own signals about the "
        "caregiver are withdrawn in every service; what other organisations posted stays. With the "
        "privacy officer's credential, the person is erased across every organisation (GDPR art. 17). "
        "The other services are told by a `caregiver.erased` event; anonymous statistics stay. "
        "The same request again returns the same erasure. The answer holds no counts."
    ),
    responses=error_responses(
        {
            401: "Missing or invalid API key",
            403: "Erasing the person across organisations needs the privacy officer's credential",
            404: "No signal about this caregiver (of your organisation, with a partner key)",
            422: "A field is invalid, or the scope is not the credential's",
        }
    ),
)
async def request_erasure(
    erasure: ErasureIn,
    request: Request,
    context: Context,
    requester: ErasureRequester,
    actor: ErasureActor,
) -> JSONResponse:
    async with SignalsUnitOfWork.begin(context.pool) as uow:
        outcome = await service.request_erasure(uow, context.settings, erasure, requester, actor)
    if outcome.refused is not None:  # raised after the commit: the refusal stays in the access log
        raise outcome.refused
    if outcome.erasure_id is None:
        raise RuntimeError("outcome.erasure_id is not set")
    body = ErasureAccepted(
        id=outcome.erasure_id,
        status="propagating",
        scope=requester.scope,
        status_url=str(request.url_for("get_erasure", erasure_id=outcome.erasure_id)),
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=status.HTTP_202_ACCEPTED)


@router.get(
    "/erasures/{erasure_id}",
    response_model=ErasureStatus,
    name="get_erasure",
    tags=["erasure"],
    summary="Whether an erasure has been handed to the other services",
    responses=error_responses({404: "No such erasure asked for with this credential's organisation or officer"}),
)
async def get_erasure(
    erasure_id: UUID,
    context: Context,
    requester: ErasureRequester,
    actor: ErasureActor,
) -> ErasureStatus:
    async with SignalsUnitOfWork.begin(context.pool) as uow:
        found = await service.erasure_status(uow, erasure_id, requester, actor)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such erasure for this organisation")
    return ErasureStatus(
        id=found.id,
        requested_at=found.requested_at,
        scope=found.scope,
        status="propagating" if found.unpublished else "propagated",
    )


# Service-to-service only: not in the OpenAPI document, refused without the internal token.
internal = APIRouter(prefix="/internal", include_in_schema=False, dependencies=[Depends(require_internal)])


@internal.get("/keys/{key_id}")
async def get_data_key(
    context: Context,
    key_id: Annotated[str, FastAPIPath(pattern=r"^[A-Za-z0-9_-]{1,64}$")],
) -> DataKey:
    """A caregiver's data key for a consuming service, which keeps it in memory only."""
    key = await context.keys.data_key(key_id)
    if key is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such data key (destroyed by an erasure, or unknown)")
    return DataKey(key_id=key_id, key=base64.b64encode(key).decode())


@internal.post("/keys")
async def get_data_keys(context: Context, wanted: DataKeyRequest) -> DataKeys:
    """Several data keys in one request: the keys of a consumer's batch of events."""
    found = await context.keys.data_keys(wanted.key_ids)
    return DataKeys(keys=[DataKey(key_id=k, key=base64.b64encode(key).decode()) for k, key in found.items()])


@router.get(
    "/instruments",
    response_model=list[Instrument],
    tags=["instruments"],
    summary="The burden instruments, with items and answer scales, to render a questionnaire",
)
async def list_instruments() -> list[Instrument]:
    return load_catalogue().all()


def create_app(settings: SignalsSettings | None = None) -> FastAPI:
    settings = settings or SignalsSettings()
    ctx = SignalsContext.create(settings, create_runtime(settings))
    register_handlers(ctx.runtime.consumer, ctx)
    app = create_service_app(
        ctx.runtime,
        description="Ingest API for signals about overburdened informal caregivers.",
        migrations=MIGRATIONS,
        produces=[Topics.SIGNALS],
        retention=repository.retention_purges,
        workers=[lambda _: _purge_unconfirmed(ctx)],
    )
    return with_context(app, ctx, router, internal, pages.router)


def _purge_unconfirmed(ctx: SignalsContext) -> Periodic:
    """Unconfirmed self-referrals keep their personal data for a day at most."""

    async def purge() -> None:
        async with SignalsUnitOfWork.begin(ctx.pool) as uow:
            await service.purge_unconfirmed(uow)

    return Periodic("self-referral-purge", ctx.settings.self_referral_purge_seconds, purge)
