"""Operator actions every service offers over HTTP: its dead letters, listed, shown and
replayed, with the same mechanics as ``python -m shared.cli … dead-letters`` (both call
``shared.dead_letters``). Only callers holding the deployment's internal token get in: the
operator console calls these endpoints, so it never reads a service's database itself."""

from __future__ import annotations

from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.encoders import jsonable_encoder

from shared import dead_letters
from shared.internal import require_internal
from shared.openapi import error_responses

ALL_STATUSES = ("dead", "parked", "replaying", "replayed")


# --- use cases -------------------------------------------------------------------------


async def list_dead_letters(pool: asyncpg.Pool, *, topic: str | None, include_resolved: bool) -> list[dict[str, Any]]:
    statuses = ALL_STATUSES if include_resolved else dead_letters.UNRESOLVED
    async with pool.acquire() as conn:
        rows = await dead_letters.list_dead_letters(conn, topic=topic, statuses=statuses)
    return [dict(row) for row in rows]


async def show_dead_letter(pool: asyncpg.Pool, dead_letter_id: int) -> dict[str, Any] | None:
    async with pool.acquire() as conn:
        row = await dead_letters.get_dead_letter(conn, dead_letter_id)
    return None if row is None else dead_letters.describe(row)


async def replay_dead_letter(pool: asyncpg.Pool, dead_letter_id: int) -> list[int]:
    """Replay one dead letter and the events parked behind it; ``ReplayError`` if it cannot be."""
    async with pool.acquire() as conn, conn.transaction():
        return await dead_letters.replay(conn, dead_letter_id)


async def unresolved_counts(pool: asyncpg.Pool) -> dict[str, int]:
    """Unresolved dead letters by status (what the DLQ-size gauge shows)."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT status, count(*) AS n FROM dead_letters WHERE status = ANY($1::text[]) GROUP BY status",
            list(dead_letters.UNRESOLVED),
        )
    return {status: 0 for status in dead_letters.UNRESOLVED} | {r["status"]: r["n"] for r in rows}


# --- routes ----------------------------------------------------------------------------

# A bigserial: a larger number is no dead letter's, and PostgreSQL would refuse to compare it.
DeadLetterId = Annotated[int, Path(ge=1, le=2**63 - 1)]
router = APIRouter(prefix="/internal/dead-letters", tags=["operations"], dependencies=[Depends(require_internal)])


def _pool(request: Request) -> asyncpg.Pool:
    return request.app.state.runtime.pool


@router.get("", summary="This service's dead letters (unresolved; all with include_resolved)")
async def list_route(
    request: Request,
    topic: Annotated[str | None, Query(max_length=200)] = None,
    include_resolved: bool = False,
) -> dict[str, Any]:
    rows = await list_dead_letters(_pool(request), topic=topic, include_resolved=include_resolved)
    return {"service": request.app.state.runtime.settings.service_name, "dead_letters": jsonable_encoder(rows)}


@router.get(
    "/{dead_letter_id}",
    summary="One dead letter in full: error, headers, body",
    responses=error_responses({404: "No such dead letter"}),
)
async def show_route(request: Request, dead_letter_id: DeadLetterId) -> dict[str, Any]:
    found = await show_dead_letter(_pool(request), dead_letter_id)
    if found is None:
        raise HTTPException(404, f"no dead letter {dead_letter_id}")
    body: dict[str, Any] = jsonable_encoder(found)
    return body


@router.post(
    "/{dead_letter_id}/replay",
    summary="Put it and its parked followers back on the original topic",
    responses=error_responses({409: "It cannot be replayed (no such dead letter, or not dead)"}),
)
async def replay_route(request: Request, dead_letter_id: DeadLetterId) -> dict[str, Any]:
    try:
        replayed = await replay_dead_letter(_pool(request), dead_letter_id)
    except dead_letters.ReplayError as exc:
        raise HTTPException(409, str(exc)) from exc
    return {"replayed": replayed}
