"""The social-map admin API: import and export Open Referral HSDS JSON.

Authenticated with the municipality's admin token (``MATCHING_ADMIN_TOKEN``), which is not
a partner key: partner organisations post signals, they do not edit the social map."""

from __future__ import annotations

import hmac
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.matching import hsds, repository
from shared.service import Runtime

bearer = HTTPBearer(auto_error=False, description="The social-map admin token")


def _runtime(request: Request) -> Runtime:
    return request.app.state.runtime


def require_admin(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    token = _runtime(request).settings.admin_token  # type: ignore[attr-defined]
    if token is None or not token.get_secret_value():  # an empty token must not open the API
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the admin API is closed: set MATCHING_ADMIN_TOKEN")
    given = credentials.credentials if credentials else ""
    if not hmac.compare_digest(given.encode(), token.get_secret_value().encode()):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or invalid admin token",
                            headers={"WWW-Authenticate": "Bearer"})


router = APIRouter(prefix="/v1/admin", tags=["social map"], dependencies=[Depends(require_admin)])


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
