"""The social-map admin API: import and export Open Referral HSDS JSON.

Authenticated with the municipality's admin token (``MATCHING_ADMIN_TOKEN``), which is not
a partner key: partner organisations post signals, they do not edit the social map."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends

from services.matching import service
from services.matching.dependencies import Context
from services.matching.service import MatchingUnitOfWork
from shared.auth import Scope, bearer_credential
from shared.openapi import error_responses

require_admin = bearer_credential(
    Scope.ADMIN, scheme_name="AdminToken", what="admin token", static_token=lambda settings: settings.admin_token
)


router = APIRouter(
    prefix="/v1/admin",
    tags=["social map"],
    dependencies=[Depends(require_admin)],
    responses=error_responses(
        {
            401: "Missing or invalid admin token",
            429: "Rate limit reached: retry after Retry-After seconds",
            503: "The admin API is closed (MATCHING_ADMIN_TOKEN is not set), or the database is away",
        }
    ),
)


@router.put("/social-map", summary="Import HSDS 3.x JSON (service_full / organization_full, one or a list)")
async def import_social_map(
    ctx: Context,
    document: Annotated[Any, Body(description="HSDS 3.x JSON")],
) -> dict[str, Any]:
    async with MatchingUnitOfWork.begin(ctx.pool) as uow:
        return await service.import_social_map(uow, document)


@router.get("/social-map", summary="Export the social map as HSDS 3.x service_full JSON")
async def export_social_map(ctx: Context) -> list[dict[str, Any]]:
    async with MatchingUnitOfWork.begin(ctx.pool) as uow:
        return await service.export_social_map(uow)
