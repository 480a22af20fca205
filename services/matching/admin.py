"""The social-map admin API: import and export Open Referral HSDS JSON.

Authenticated with the municipality's admin token (``MATCHING_ADMIN_TOKEN``), which is not
a partner key: partner organisations post signals, they do not edit the social map."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request

from services.matching import hsds, repository
from shared.auth import Scope, bearer_credential
from shared.openapi import error_responses
from shared.service import Runtime


def _runtime(request: Request) -> Runtime:
    return request.app.state.runtime


require_admin = bearer_credential(Scope.ADMIN, scheme_name="AdminToken", what="admin token",
                                  static_token=lambda settings: settings.admin_token)


router = APIRouter(prefix="/v1/admin", tags=["social map"], dependencies=[Depends(require_admin)],
                   responses=error_responses({
                       401: "Missing or invalid admin token",
                       429: "Rate limit reached: retry after Retry-After seconds",
                       503: "The admin API is closed (MATCHING_ADMIN_TOKEN is not set), or the database is away"}))


@router.put("/social-map", summary="Import HSDS 3.x JSON (service_full / organization_full, one or a list)")
async def import_social_map(
    request: Request, document: Annotated[Any, Body(description="HSDS 3.x JSON")],
) -> dict[str, Any]:
    result = hsds.parse_json(document, file="request body")
    async with _runtime(request).pool.acquire() as conn:
        report = await repository.import_records(conn, result.services)
    return {"services": len(result.services), **asdict(report),
            "issues": [asdict(issue) for issue in result.issues]}


@router.get("/social-map", summary="Export the social map as HSDS 3.x service_full JSON")
async def export_social_map(request: Request) -> list[dict[str, Any]]:
    async with _runtime(request).pool.acquire() as conn:
        return await repository.stored_records(conn)
