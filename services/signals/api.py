"""The ingest API: partner organisations post signals, follow their referral's status and
withdraw their signals; the privacy officer erases a person (see ``erasure``)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated
from uuid import UUID, uuid4

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.signals import domain, repository
from services.signals.config import SignalsSettings
from services.signals.erasure import Requester, erase
from services.signals.handlers import register_handlers
from services.signals.metrics import PipelineMetrics
from services.signals.repository import Organisation
from services.signals.schemas import (
    Accepted,
    ErasureAccepted,
    ErasureIn,
    ErasureStatus,
    SignalIn,
    SignalStatus,
)
from shared.contracts import EventType, Topics
from shared.http import BodyLimitMiddleware, install_error_handlers
from shared.instruments import Instrument, load_catalogue
from shared.outbox import add_event, new_event
from shared.service import Runtime, create_runtime, create_service_app

MIGRATIONS = Path(__file__).parent / "migrations"

bearer = HTTPBearer(auto_error=False, description="The partner organisation's API key")


def runtime_of(request: Request) -> Runtime:
    return request.app.state.runtime


async def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Organisation:
    unauthorised = HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        "missing or invalid API key: send 'Authorization: Bearer <key>'",
        headers={"WWW-Authenticate": "Bearer"},
    )
    if credentials is None or not credentials.credentials:
        raise unauthorised
    async with runtime_of(request).pool.acquire() as conn:
        organisation = await repository.organisation_for_key(conn, credentials.credentials)
    if organisation is None:
        raise unauthorised
    return organisation


router = APIRouter(prefix="/v1", tags=["signals"])


@router.post(
    "/signals",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    summary="Post a signal about a caregiver who may be overburdened",
    responses={
        401: {"description": "Missing or invalid API key"},
        413: {"description": "Body larger than 64 KiB"},
        422: {"description": "A field is invalid, or the Idempotency-Key was used with another body"},
        503: {"description": "The database or broker is unavailable; nothing was stored: retry after "
                             "Retry-After seconds with the same Idempotency-Key"},
    },
)
async def post_signal(
    signal: SignalIn,
    request: Request,
    organisation: Annotated[Organisation, Depends(authenticate)],
    idempotency_key: Annotated[
        str | None, Header(max_length=200, description="Retries with the same key return the first answer")
    ] = None,
    x_correlation_id: Annotated[str | None, Header(max_length=200)] = None,
) -> JSONResponse:
    if errors := domain.instrument_errors(signal, load_catalogue()):
        raise RequestValidationError(errors)
    runtime = runtime_of(request)
    settings: SignalsSettings = runtime.settings  # type: ignore[assignment]
    signal_id = uuid4()
    received_at = datetime.now(UTC)
    async with runtime.pool.acquire() as conn, conn.transaction():
        if idempotency_key:
            fingerprint = domain.request_hash(signal)
            earlier = await repository.claim_idempotency_key(
                conn, organisation.id, idempotency_key, fingerprint, signal_id
            )
            if earlier is not None:
                earlier_id, earlier_hash = earlier
                if earlier_hash != fingerprint:
                    return JSONResponse(
                        {"error": "idempotency_key_reused", "detail": [{
                            "field": "Idempotency-Key",
                            "message": "this key was already used with a different request body",
                            "type": "idempotency_conflict"}]},
                        status_code=422,
                    )
                return _accepted(request, earlier_id)
        pseudonym = domain.caregiver_pseudonym(
            settings.pseudonym_key.get_secret_value().encode(), signal, signal_id
        )
        payload = domain.received_event(
            signal, signal_id=signal_id, organisation=organisation, received_at=received_at
        )
        event = new_event(
            EventType.SIGNAL_RECEIVED, payload, producer=settings.service_name,
            subject=pseudonym, correlation_id=x_correlation_id or str(signal_id),
        )
        await repository.insert_signal(
            conn, signal_id=signal_id, organisation_id=organisation.id, pseudonym=pseudonym,
            municipality_code=signal.caregiver.municipality_code, source_kind=signal.source.kind,
            urgency=signal.urgency, received_at=received_at,
            body=signal.model_dump(mode="json"), event_id=event.event_id,
        )
        await add_event(conn, Topics.SIGNALS, event)
    return _accepted(request, signal_id)


def _accepted(request: Request, signal_id: UUID) -> JSONResponse:
    body = Accepted(
        id=signal_id, status="received",
        status_url=str(request.url_for("get_signal", signal_id=signal_id)),
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=status.HTTP_202_ACCEPTED)


@router.get(
    "/signals/{signal_id}",
    response_model=SignalStatus,
    name="get_signal",
    summary="The referral's status, timeline and outcome of each stage",
    responses={404: {"description": "No such signal for this organisation"}},
)
async def get_signal(
    signal_id: UUID,
    request: Request,
    organisation: Annotated[Organisation, Depends(authenticate)],
) -> SignalStatus:
    async with runtime_of(request).pool.acquire() as conn:
        found = await repository.signal_with_stages(conn, signal_id, organisation.id)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such signal for this organisation")
    return domain.status_view(*found)


async def authenticate_erasure(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Requester:
    """A partner key (its own signals) or a privacy officer's credential (the person)."""
    if credentials is not None and credentials.credentials:
        async with runtime_of(request).pool.acquire() as conn:
            officer = await repository.privacy_officer_for_key(conn, credentials.credentials)
        if officer is not None:
            return Requester(officer.id, officer.name, "privacy_officer")
    organisation = await authenticate(request, credentials)
    return Requester(organisation.id, organisation.name, "partner")


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
        "The same request again returns the same erasure. The answer holds no counts."),
    responses={401: {"description": "Missing or invalid API key"},
               403: {"description": "Erasing the person across organisations needs the privacy officer's credential"},
               404: {"description": "No signal about this caregiver (of your organisation, with a partner key)"}},
)
async def request_erasure(
    erasure: ErasureIn, request: Request, requester: Annotated[Requester, Depends(authenticate_erasure)],
) -> JSONResponse:
    if erasure.scope is not None and erasure.scope is not requester.scope:
        if requester.role == "partner":
            raise HTTPException(status.HTTP_403_FORBIDDEN, "a partner key withdraws only its own signals "
                                "(scope 'signals'); erasing the person across organisations is the privacy officer's")
        raise RequestValidationError([{
            "loc": ("body", "scope"), "type": "scope_for_role",
            "msg": "the privacy officer's credential erases the person everywhere: scope 'caregiver'"}])
    runtime = runtime_of(request)
    settings: SignalsSettings = runtime.settings  # type: ignore[assignment]
    key = settings.pseudonym_key.get_secret_value().encode()
    pseudonyms = domain.identity_pseudonyms(key, erasure.caregiver) if erasure.caregiver else []
    if erasure.caregiver and not pseudonyms:
        raise RequestValidationError([{
            "loc": ("body", "caregiver"), "type": "missing_identity",
            "msg": "give name, birth_year and postcode together, or email, or phone"}])
    digest = domain.erasure_request_digest(requester.id, requester.scope.value, pseudonyms, erasure.signal_ids)
    async with runtime.pool.acquire() as conn, conn.transaction():
        erasure_id = await repository.lock_erasure_request(conn, digest)
        if erasure_id is None:
            erasure_id = uuid4()
            posted_by = requester.id if requester.role == "partner" else None
            caregivers = await repository.caregivers_of(
                conn, pseudonyms=pseudonyms, signal_ids=erasure.signal_ids, posted_by=posted_by)
            if not caregivers:
                raise HTTPException(status.HTTP_404_NOT_FOUND, "your organisation posted no signal about this caregiver"
                                    if posted_by else "no signal about this caregiver")
            await erase(
                conn, erasure_id=erasure_id, requester=requester, pseudonyms=caregivers,
                identified_by="identity" if erasure.caregiver else "signal_ids", request_digest=digest,
                requested_at=datetime.now(UTC), producer=settings.service_name,
            )
    body = ErasureAccepted(
        id=erasure_id, status="propagating", scope=requester.scope,
        status_url=str(request.url_for("get_erasure", erasure_id=erasure_id)),
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=status.HTTP_202_ACCEPTED)


@router.get(
    "/erasures/{erasure_id}",
    response_model=ErasureStatus,
    name="get_erasure",
    tags=["erasure"],
    summary="Whether an erasure has been handed to the other services",
    responses={404: {"description": "No such erasure asked for with this credential's organisation or officer"}},
)
async def get_erasure(
    erasure_id: UUID, request: Request, requester: Annotated[Requester, Depends(authenticate_erasure)],
) -> ErasureStatus:
    async with runtime_of(request).pool.acquire() as conn:
        row = await repository.erasure_of(conn, erasure_id, requester.id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such erasure for this organisation")
    return ErasureStatus(id=row["id"], requested_at=row["requested_at"], scope=row["scope"],
                         status="propagating" if row["unpublished"] else "propagated")


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
    runtime = create_runtime(settings)
    register_handlers(runtime)
    runtime.metric_refreshers.append(PipelineMetrics(runtime.metrics.registry).refresh)
    app = create_service_app(
        runtime,
        title="signal-to-support: signals",
        description="Ingest API for signals about overburdened informal caregivers.",
        migrations=MIGRATIONS,
        produces=[Topics.SIGNALS],
    )
    app.include_router(router)
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_body_bytes)
    return app
