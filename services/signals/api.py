"""The ingest API: partner organisations post signals, follow their referral's status and
withdraw their signals; the privacy officer erases a person (see ``erasure``)."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID, uuid4

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Request, status
from fastapi import Path as FastAPIPath
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from services.signals import domain, pages, repository, service
from services.signals.config import SignalsSettings
from services.signals.erasure import Requester, erase
from services.signals.handlers import register_handlers
from services.signals.keys import KeyHolder
from services.signals.metrics import PipelineMetrics
from services.signals.repository import Organisation
from services.signals.schemas import (
    Accepted,
    DataKey,
    ErasureAccepted,
    ErasureIn,
    ErasureStatus,
    SignalIn,
    SignalStatus,
)
from shared import access_log
from shared.access_log import Action, Actor
from shared.auth import Credential, Scope, bearer_credential
from shared.contracts import Topics
from shared.crypto import MasterKeyring
from shared.instruments import Instrument, load_catalogue
from shared.internal import require_internal
from shared.openapi import error_responses
from shared.service import Runtime, create_runtime, create_service_app
from shared.worker import Periodic

MIGRATIONS = Path(__file__).parent / "migrations"


def runtime_of(request: Request) -> Runtime:
    return request.app.state.runtime


async def _organisation_of(request: Request, credential: Credential) -> Organisation:
    async with runtime_of(request).pool.acquire() as conn:
        organisation = await repository.organisation(conn, UUID(credential.subject))
    if organisation is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "this API key's organisation no longer exists",
                            headers={"WWW-Authenticate": "Bearer"})
    return organisation


@dataclass(frozen=True)
class Partner:
    """The organisation a partner key belongs to, and how the access log names the caller."""

    organisation: Organisation
    actor: Actor


def partner(scope: Scope) -> Any:
    """The partner whose key holds ``scope``."""
    credential = bearer_credential(scope, scheme_name="PartnerKey", what="partner API key")

    # A default, not Annotated: the annotation would be resolved by name, and ``credential`` is local.
    async def caller(request: Request, found: Credential = Depends(credential)) -> Partner:
        organisation = await _organisation_of(request, found)
        return Partner(organisation, Actor("partner", f"key:{found.id}", str(organisation.id)))

    return Depends(caller)


router = APIRouter(prefix="/v1", tags=["signals"])


@router.post(
    "/signals",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    summary="Post a signal about a caregiver who may be overburdened",
    responses=error_responses({
        401: "Missing, invalid, revoked or expired API key",
        403: "The key lacks the 'ingest' scope",
        413: "Body larger than 64 KiB",
        429: "The key's rate limit is reached: retry after Retry-After seconds",
        422: "A field is invalid (also a source kind the organisation may not post as), "
             "or the Idempotency-Key was used with another body",
        503: "The database or broker is unavailable; nothing was stored: retry after "
             "Retry-After seconds with the same Idempotency-Key",
    }),
)
async def post_signal(
    signal: SignalIn,
    request: Request,
    caller: Annotated[Partner, partner(Scope.INGEST)],
    idempotency_key: Annotated[
        str | None, Header(max_length=200, description="Retries with the same key return the first answer")
    ] = None,
    x_correlation_id: Annotated[str | None, Header(max_length=200)] = None,
) -> JSONResponse:
    organisation, actor = caller.organisation, caller.actor
    if errors := domain.instrument_errors(signal, load_catalogue()) + domain.source_kind_errors(signal, organisation):
        raise RequestValidationError(errors)
    runtime = runtime_of(request)
    async with runtime.pool.acquire() as conn:
        intake = await service.intake_signal(conn, runtime.settings, key_holder(runtime), organisation,  # type: ignore[arg-type]
                                             signal, idempotency_key=idempotency_key,
                                             correlation_id=x_correlation_id)
        if not intake.conflict:
            await access_log.record(conn, actor, Action.CREATE, "signal", intake.signal_id)
    if intake.conflict:
        return JSONResponse(
            {"error": "idempotency_key_reused", "detail": [{
                "field": "Idempotency-Key", "message": "this key was already used with a different request body",
                "type": "idempotency_conflict"}]},
            status_code=422,
        )
    return _accepted(request, intake.signal_id)


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
    responses=error_responses({404: "No such signal for this organisation"}),
)
async def get_signal(
    signal_id: UUID,
    request: Request,
    caller: Annotated[Partner, partner(Scope.READ_STATUS)],
) -> SignalStatus:
    async with runtime_of(request).pool.acquire() as conn:
        found = await repository.signal_with_stages(conn, signal_id, caller.organisation.id)
        await access_log.record(conn, caller.actor, Action.READ, "signal", signal_id,
                                outcome="ok" if found else "not_found")
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such signal for this organisation")
    return domain.status_view(*found)


erasure_credential = bearer_credential(Scope.ERASE_OWN, Scope.PRIVACY_OFFICER, scheme_name="PartnerKey",
                                       what="partner API key or privacy officer's credential")


async def authenticate_erasure(
    request: Request, credential: Annotated[Credential, Depends(erasure_credential)],
) -> Requester:
    """A partner key (its own signals) or a privacy officer's credential (the person)."""
    if Scope.PRIVACY_OFFICER in credential.scopes:
        return Requester(UUID(credential.subject), credential.holder, "privacy_officer")
    organisation = await _organisation_of(request, credential)
    return Requester(organisation.id, organisation.name, "partner")


async def erasure_actor(
    requester: Annotated[Requester, Depends(authenticate_erasure)],
    credential: Annotated[Credential, Depends(erasure_credential)],
) -> Actor:
    """The access log's name for the requester: a privacy officer acts for the controller."""
    if requester.role == "privacy_officer":
        return Actor("privacy_officer", str(requester.id), on_behalf_of="controller")
    return Actor("partner", f"key:{credential.id}", str(requester.id))


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
    responses=error_responses({
        401: "Missing or invalid API key",
        403: "Erasing the person across organisations needs the privacy officer's credential",
        404: "No signal about this caregiver (of your organisation, with a partner key)",
        422: "A field is invalid, or the scope is not the credential's"}),
)
async def request_erasure(
    erasure: ErasureIn, request: Request, requester: Annotated[Requester, Depends(authenticate_erasure)],
    actor: Annotated[Actor, Depends(erasure_actor)],
) -> JSONResponse:
    runtime = runtime_of(request)
    settings: SignalsSettings = runtime.settings  # type: ignore[assignment]
    key = settings.pseudonym_key.get_secret_value().encode()
    pseudonyms = domain.identity_pseudonyms(key, erasure.caregiver) if erasure.caregiver else []
    # The person as the access log names them: digests of the pseudonyms, or the signal ids.
    subject = (("caregiver", [domain.subject_digest(p) for p in pseudonyms]) if erasure.caregiver
               else ("signal", erasure.signal_ids or []))
    if erasure.scope is not None and erasure.scope is not requester.scope:
        if requester.role == "partner":
            async with runtime.pool.acquire() as conn:  # a partner reaching for the person: logged
                await access_log.record(conn, actor, Action.ERASE, *subject, outcome="forbidden")
            raise HTTPException(status.HTTP_403_FORBIDDEN, "a partner key withdraws only its own signals "
                                "(scope 'signals'); erasing the person across organisations is the privacy officer's")
        raise RequestValidationError([{
            "loc": ("body", "scope"), "type": "scope_for_role",
            "msg": "the privacy officer's credential erases the person everywhere: scope 'caregiver'"}])
    if erasure.caregiver and not pseudonyms:
        raise RequestValidationError([{
            "loc": ("body", "caregiver"), "type": "missing_identity",
            "msg": "give name, birth_year and postcode together, or email, or phone"}])
    digest = domain.erasure_request_digest(requester.id, requester.scope.value, pseudonyms, erasure.signal_ids)
    posted_by = requester.id if requester.role == "partner" else None
    async with runtime.pool.acquire() as conn:
        async with conn.transaction():
            erasure_id = await repository.lock_erasure_request(conn, digest)
            caregivers = []
            if erasure_id is None:
                caregivers = await repository.caregivers_of(
                    conn, pseudonyms=pseudonyms, signal_ids=erasure.signal_ids, posted_by=posted_by)
            if caregivers:
                erasure_id = uuid4()
                await erase(
                    conn, erasure_id=erasure_id, requester=requester, pseudonyms=caregivers,
                    identified_by="identity" if erasure.caregiver else "signal_ids", request_digest=digest,
                    requested_at=datetime.now(UTC), producer=settings.service_name,
                )
                await access_log.record(conn, actor, Action.ERASE, "erasure", erasure_id)
                await access_log.record(conn, actor, Action.ERASE, *subject)
            elif erasure_id is not None:  # the same request again: it names the earlier erasure
                await access_log.record(conn, actor, Action.READ, "erasure", erasure_id)
        if erasure_id is None:  # logged too: asking about a person is an access of its own
            await access_log.record(conn, actor, Action.ERASE, *subject, outcome="not_found")
            raise HTTPException(status.HTTP_404_NOT_FOUND, "your organisation posted no signal about this caregiver"
                                if posted_by else "no signal about this caregiver")
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
    responses=error_responses({404: "No such erasure asked for with this credential's organisation or officer"}),
)
async def get_erasure(
    erasure_id: UUID, request: Request, requester: Annotated[Requester, Depends(authenticate_erasure)],
    actor: Annotated[Actor, Depends(erasure_actor)],
) -> ErasureStatus:
    async with runtime_of(request).pool.acquire() as conn:
        row = await repository.erasure_of(conn, erasure_id, requester.id)
        await access_log.record(conn, actor, Action.READ, "erasure", erasure_id, outcome="ok" if row else "not_found")
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such erasure for this organisation")
    return ErasureStatus(id=row["id"], requested_at=row["requested_at"], scope=row["scope"],
                         status="propagating" if row["unpublished"] else "propagated")


def key_holder(runtime: Runtime) -> KeyHolder:
    return runtime.keys  # type: ignore[return-value]


# Service-to-service only: not in the OpenAPI document, refused without the internal token.
internal = APIRouter(prefix="/internal", include_in_schema=False, dependencies=[Depends(require_internal)])


@internal.get("/keys/{key_id}")
async def get_data_key(
    request: Request, key_id: Annotated[str, FastAPIPath(pattern=r"^[A-Za-z0-9_-]{1,64}$")],
) -> DataKey:
    """A caregiver's data key for a consuming service, which keeps it in memory only."""
    key = await key_holder(runtime_of(request)).data_key(key_id)
    if key is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such data key (destroyed by an erasure, or unknown)")
    return DataKey(key_id=key_id, key=base64.b64encode(key).decode())


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
    keyring = MasterKeyring.parse(settings.encryption_master_keys.get_secret_value())
    runtime.keys = KeyHolder(keyring, lambda: runtime.pool)
    register_handlers(runtime)
    def purge_unconfirmed(rt: Runtime) -> Periodic:
        # Unconfirmed self-referrals keep their personal data for a day at most.
        async def purge() -> None:
            async with rt.pool.acquire() as conn:
                await service.purge_unconfirmed(conn)

        return Periodic("self-referral-purge", settings.self_referral_purge_seconds, purge)

    runtime.metric_refreshers.append(PipelineMetrics(runtime.metrics.registry).refresh)
    app = create_service_app(
        runtime,
        title="signal-to-support: signals",
        description="Ingest API for signals about overburdened informal caregivers.",
        migrations=MIGRATIONS,
        produces=[Topics.SIGNALS], retention=repository.retention_purges,
        workers=[purge_unconfirmed],
    )
    app.include_router(router)
    app.include_router(internal)
    app.include_router(pages.router)
    return app
