"""The provider API: a provider (or caregiver consultant) lists its referrals and answers
them. Authenticated with a provider key per service (``python -m services.notify.cli
issue-provider-key``, a ``shared.auth`` credential); a key only reaches its own service's
referrals."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Query, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field

from services.notify import lifecycle, referrals
from services.notify.context import NotifyContext
from services.notify.dependencies import Context
from services.notify.domain import Referral
from services.notify.repository import NotifyUnitOfWork
from shared import access_log
from shared.access_log import Action, Actor
from shared.auth import Credential, Scope, bearer_credential
from shared.contracts import ReferralStatus, RejectionReason
from shared.openapi import credential_errors, error_responses


class StatusUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: ReferralStatus
    reason_code: RejectionReason | None = Field(None, description="required with rejected; allowed with failed")
    note: str | None = Field(None, max_length=2000, description="no medical details: the referrer may read it")


class HistoryEntry(BaseModel):
    status: ReferralStatus
    reason_code: RejectionReason | None
    note: str | None
    updated_by: str
    at: datetime


class ReferralView(BaseModel):
    id: UUID
    status: ReferralStatus
    reason_code: RejectionReason | None
    note: str | None
    service_id: str
    service_name: str
    consultant: bool
    created_at: datetime
    updated_at: datetime
    respond_by: datetime | None
    reminded_at: datetime | None
    escalated_at: datetime | None
    referrer: str | None
    caregiver: dict[str, Any] | None = Field(description="contact details only with the caregiver's consent")
    history: list[HistoryEntry]


provider_credential = bearer_credential(Scope.PROVIDER, scheme_name="ProviderKey", what="provider key")


async def provider_service(credential: Annotated[Credential, Depends(provider_credential)]) -> str:
    """The service id the presented key answers for."""
    return credential.subject


Provider = Annotated[str, Depends(provider_service)]


async def provider_actor(credential: Annotated[Credential, Depends(provider_credential)]) -> Actor:
    """The provider as the access log names it: the key's id, never the key."""
    return Actor("provider", f"key:{credential.id}", credential.subject)


ProviderActor = Annotated[Actor, Depends(provider_actor)]
router = APIRouter(
    prefix="/v1/referrals",
    tags=["referrals"],
    responses=credential_errors(
        "provider key",
        "The key lacks the 'provider' scope, or the referral is another service's",
        "The key's rate limit is",
    ),
)


async def _own(uow: NotifyUnitOfWork, ctx: NotifyContext, referral_id: UUID, actor: Actor, action: Action) -> Referral:
    """The referral, if it is the actor's service's; a refusal is logged on its own
    connection, so a transaction that rolls back does not take the line with it."""
    referral = await uow.referrals.get(referral_id)
    refusal = "not_found" if referral is None else "forbidden" if referral.service_id != actor.organisation else None
    if refusal:
        await access_log.record(ctx.pool, actor, action, "referral", referral_id, outcome=refusal)
    if referral is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such referral")
    if refusal:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this referral is for another service")
    return referral


async def _view(uow: NotifyUnitOfWork, referral: Referral) -> dict[str, Any]:
    return referrals.view(referral, await uow.referrals.history(referral.id))


@router.get("", response_model=list[ReferralView], summary="Your service's referrals, newest first")
async def list_referrals(
    ctx: Context,
    service_id: Provider,
    actor: ProviderActor,
    status_filter: Annotated[ReferralStatus | None, Query(alias="status")] = None,
) -> list[dict[str, Any]]:
    async with ctx.begin() as uow:
        found = await uow.referrals.for_service(service_id, status_filter)
        await uow.log_access(actor, Action.READ, "referral", [referral.id for referral in found])
        return [await _view(uow, referral) for referral in found]


@router.get(
    "/{referral_id}",
    response_model=ReferralView,
    summary="One referral with its history",
    responses=error_responses({404: "No such referral"}),
)
async def get_referral(ctx: Context, referral_id: UUID, actor: ProviderActor) -> dict[str, Any]:
    async with ctx.begin() as uow:
        referral = await _own(uow, ctx, referral_id, actor, Action.READ)
        await uow.log_access(actor, Action.READ, "referral", referral_id)
        return await _view(uow, referral)


@router.post(
    "/{referral_id}/status",
    response_model=ReferralView,
    summary="Answer a referral: accept, reject (with a reason), and report progress",
    responses=error_responses({404: "No such referral", 409: "The referral cannot go from its status to this one"}),
)
async def update_status(ctx: Context, referral_id: UUID, update: StatusUpdate, actor: ProviderActor) -> dict[str, Any]:
    async with ctx.begin() as uow:
        current = await _own(uow, ctx, referral_id, actor, Action.UPDATE)
        try:
            referral, _ = await referrals.change_status(
                uow, ctx, referral_id, update.status, update.reason_code, update.note, current.answered_by
            )
        except lifecycle.InvalidUpdate as exc:
            raise RequestValidationError(
                [{"loc": ("body", exc.field), "msg": exc.message, "type": "value_error"}]
            ) from exc
        except lifecycle.IllegalTransition as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
        await uow.log_access(actor, Action.UPDATE, "referral", referral_id)
        return await _view(uow, referral)
