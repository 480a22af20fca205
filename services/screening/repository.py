"""SQL for cases and screenings: the case repository a unit of work holds; it returns the
domain's objects (``Contribution``, ``DueRescreen``), never database rows."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from services.screening.domain import CaseAssessment, Contribution, DueRescreen
from shared.contracts import CloseReason, RiskLevel, ScreeningResult
from shared.retention import Purge


class CaseRepository:
    """The caregivers' cases and their screened signals, inside a unit of work's transaction."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def open_case_for(
        self, pseudonym: str, municipality_code: str, at: datetime, window: timedelta
    ) -> tuple[UUID, bool]:
        """The caregiver's case within the merge window, or a new one; (id, created).

        One caregiver's events share a partition key, so they arrive in order on one consumer:
        no two transactions race to open the same caregiver's case."""
        case_id: UUID | None = await self._conn.fetchval(
            """SELECT id FROM cases WHERE caregiver_pseudonym = $1 AND last_signal_at >= $2
               ORDER BY last_signal_at DESC LIMIT 1 FOR UPDATE""",
            pseudonym,
            at - window,
        )
        if case_id is not None:
            return case_id, False
        case_id = uuid4()
        await self._conn.execute(
            """INSERT INTO cases (id, caregiver_pseudonym, municipality_code, opened_at, last_signal_at,
                   risk_level, confidence, assessment)
               VALUES ($1, $2, $3, $4, $4, 'in_balance', 'low', '{}')""",
            case_id,
            pseudonym,
            municipality_code,
            at,
        )
        return case_id, True

    async def add_screening(self, case_id: UUID, screening: Contribution, screened_at: datetime) -> None:
        await self._conn.execute(
            """INSERT INTO screenings (signal_id, case_id, organisation_id, source_kind, received_at,
                   screened_at, result) VALUES ($1, $2, $3, $4, $5, $6, $7)""",
            screening.signal_id,
            case_id,
            screening.organisation_id,
            screening.source_kind.value,
            screening.received_at,
            screened_at,
            screening.result.model_dump(mode="json"),
        )

    async def screenings(self, case_id: UUID) -> list[Contribution]:
        """The case's screened signals, oldest first."""
        rows = await self._conn.fetch(
            "SELECT * FROM screenings WHERE case_id = $1 ORDER BY received_at, signal_id", case_id
        )
        return [
            Contribution(
                signal_id=row["signal_id"],
                source_kind=row["source_kind"],
                organisation_id=row["organisation_id"],
                received_at=row["received_at"],
                result=ScreeningResult.model_validate(row["result"]),
            )
            for row in rows
        ]

    async def update_case(
        self,
        case_id: UUID,
        case: CaseAssessment,
        *,
        signals: int,
        last_signal_at: datetime,
        rescreen_due_at: datetime | None,
    ) -> bool:
        """Record the case's new judgement; True when this update escalated it for the first time."""
        escalated: bool = await self._conn.fetchval(
            """UPDATE cases c SET last_signal_at = GREATEST(c.last_signal_at, $2), risk_level = $3,
                   confidence = $4, assessment = $5, rescreen_due_at = $6, rescreen_emitted_at = NULL,
                   closed_at = NULL, close_reason = NULL,
                   escalated_at = CASE WHEN $7 THEN COALESCE(c.escalated_at, now()) ELSE c.escalated_at END
               FROM (SELECT escalated_at FROM cases WHERE id = $1) before
               WHERE c.id = $1
               RETURNING $7 AND before.escalated_at IS NULL""",
            case_id,
            last_signal_at,
            case.risk_level.value,
            case.confidence.value,
            _assessment(case, signals),
            rescreen_due_at,
            case.escalate,
        )
        return escalated

    async def reassess_case(self, case_id: UUID, case: CaseAssessment, *, signals: int) -> None:
        """The case's judgement without a withdrawn signal; escalation and re-screening stand."""
        await self._conn.execute(
            "UPDATE cases SET risk_level = $2, confidence = $3, assessment = $4 WHERE id = $1",
            case_id,
            case.risk_level.value,
            case.confidence.value,
            _assessment(case, signals),
        )

    async def claim_due_rescreens(self, now: datetime, limit: int = 100) -> list[DueRescreen]:
        """The cases due for a re-screen, locked (another replica skips them) until commit."""
        rows = await self._conn.fetch(
            """SELECT c.id, c.caregiver_pseudonym, c.municipality_code, c.risk_level, c.rescreen_due_at,
                      (SELECT s.signal_id FROM screenings s WHERE s.case_id = c.id
                       ORDER BY s.received_at DESC LIMIT 1) AS last_signal_id
               FROM cases c WHERE c.rescreen_due_at <= $1 AND c.rescreen_emitted_at IS NULL
               ORDER BY c.rescreen_due_at LIMIT $2 FOR UPDATE SKIP LOCKED""",
            now,
            limit,
        )
        return [
            DueRescreen(
                case_id=r["id"],
                caregiver_pseudonym=r["caregiver_pseudonym"],
                municipality_code=r["municipality_code"],
                risk_level=RiskLevel(r["risk_level"]),
                due_at=r["rescreen_due_at"],
                last_signal_id=r["last_signal_id"],
            )
            for r in rows
        ]

    async def mark_rescreen_emitted(self, case_id: UUID, at: datetime) -> None:
        await self._conn.execute("UPDATE cases SET rescreen_emitted_at = $2 WHERE id = $1", case_id, at)

    async def rescreen_now(self, case_id: UUID, at: datetime) -> None:
        """Make the re-screen due at ``at``, unless the case was closed for good."""
        await self._conn.execute(
            """UPDATE cases SET rescreen_due_at = $2, rescreen_emitted_at = NULL
               WHERE id = $1 AND (closed_at IS NULL OR close_reason = 'support_in_place')""",
            case_id,
            at,
        )

    async def close_case(self, case_id: UUID, at: datetime, reason: CloseReason, *, stop_rescreens: bool) -> None:
        await self._conn.execute(
            """UPDATE cases SET closed_at = $2, close_reason = $3,
                   rescreen_due_at = CASE WHEN $4 THEN NULL ELSE rescreen_due_at END WHERE id = $1""",
            case_id,
            at,
            reason.value,
            stop_rescreens,
        )

    async def erase_caregiver(self, pseudonym: str) -> int:
        """Delete the caregiver's cases and their screenings; returns the number of cases."""
        cases = [
            r["id"] for r in await self._conn.fetch("SELECT id FROM cases WHERE caregiver_pseudonym = $1", pseudonym)
        ]
        await self._conn.execute("DELETE FROM screenings WHERE case_id = ANY($1::uuid[])", cases)
        await self._conn.execute("DELETE FROM cases WHERE id = ANY($1::uuid[])", cases)
        return len(cases)

    async def withdraw_signals(self, signal_ids: list[UUID]) -> list[UUID]:
        """Delete these signals' screenings, and a case none of whose signals is left; the
        case's other signals (another organisation's) keep it. Returns the cases kept."""
        cases = list(
            {
                r["case_id"]
                for r in await self._conn.fetch(
                    "DELETE FROM screenings WHERE signal_id = ANY($1::uuid[]) RETURNING case_id", signal_ids
                )
            }
        )
        await self._conn.execute(
            """DELETE FROM cases c WHERE c.id = ANY($1::uuid[])
               AND NOT EXISTS (SELECT 1 FROM screenings s WHERE s.case_id = c.id)""",
            cases,
        )
        return [
            r["id"]
            for r in await self._conn.fetch("SELECT id FROM cases WHERE id = ANY($1::uuid[]) ORDER BY id", cases)
        ]


def _assessment(case: CaseAssessment, signals: int) -> dict[str, Any]:
    return {"reasons": case.reasons, "signals": signals}


def retention_purges(settings: Any) -> list[Purge]:
    """A case (with its screenings) goes once no signal joined it and no re-screen was due
    for ``retention_case_days``."""
    return [
        Purge(
            "cases",
            settings.retention_case_days,
            """
        WITH gone AS (SELECT id FROM cases
                      WHERE last_signal_at < $1 AND (rescreen_due_at IS NULL OR rescreen_due_at < $1)
                      ORDER BY last_signal_at LIMIT $2 FOR UPDATE SKIP LOCKED),
             screenings AS (DELETE FROM screenings WHERE case_id IN (SELECT id FROM gone))
        DELETE FROM cases WHERE id IN (SELECT id FROM gone) RETURNING 1""",
        )
    ]
