"""SQL of the casework service: consultants and their sign-in, regions and Wmo desks, the
cases as the consultant sees them, and the access log (``log_access``: every view, one place).
Rows come back as the domain's objects, made by column name."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID, uuid4

import asyncpg

from services.casework.domain import Case, CaseEvent, CaseReferral, CaseSignal, Consultant, WmoDesk
from shared import access_log
from shared.access_log import Action, Actor
from shared.contracts import ReferralStatus


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


T = TypeVar("T")


def _one(cls: type[T], row: asyncpg.Record | None) -> T | None:
    return None if row is None else cls(**row)


# A consultant's views read a case; everything else they do changes it.
_ACTIONS = {"view_case": Action.READ, "view_queue": Action.READ, "sign_in": Action.READ}


class CaseworkRepository:
    """The casework store, read and written inside a unit of work's transaction."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    # --- consultants, sign-in and sessions -------------------------------------------------------

    async def add_consultant(self, name: str, email: str, municipality_code: str, fallback_region: str | None) -> UUID:
        return await self.conn.fetchval(
            """INSERT INTO consultants (id, name, email, municipality_code, fallback_region)
               VALUES ($1, $2, lower($3), $4, $5)
               ON CONFLICT (email) DO UPDATE SET name = EXCLUDED.name, municipality_code = EXCLUDED.municipality_code,
                   fallback_region = EXCLUDED.fallback_region
               RETURNING id""",
            uuid4(),
            name,
            email,
            municipality_code,
            fallback_region,
        )

    async def consultant_by_email(self, email: str) -> Consultant | None:
        return _one(Consultant, await self.conn.fetchrow("SELECT * FROM consultants WHERE email = lower($1)", email))

    async def add_sign_in_token(self, consultant_id: UUID, token: str, expires_at: datetime) -> None:
        await self.conn.execute(
            "INSERT INTO sign_in_tokens (digest, consultant_id, expires_at) VALUES ($1, $2, $3)",
            digest(token),
            consultant_id,
            expires_at,
        )

    async def use_sign_in_token(self, token: str, now: datetime) -> UUID | None:
        """The consultant of a valid, unused link; the link is used up."""
        return await self.conn.fetchval(
            """UPDATE sign_in_tokens SET used_at = $2
               WHERE digest = $1 AND used_at IS NULL AND expires_at > $2 RETURNING consultant_id""",
            digest(token),
            now,
        )

    async def add_session(self, consultant_id: UUID, token: str, csrf_token: str, expires_at: datetime) -> None:
        await self.conn.execute("DELETE FROM sessions WHERE expires_at < now()")
        await self.conn.execute(
            "INSERT INTO sessions (digest, consultant_id, csrf_token, expires_at) VALUES ($1, $2, $3, $4)",
            digest(token),
            consultant_id,
            csrf_token,
            expires_at,
        )

    async def session(self, token: str, now: datetime) -> Consultant | None:
        row = await self.conn.fetchrow(
            """SELECT c.*, s.csrf_token FROM sessions s JOIN consultants c ON c.id = s.consultant_id
               WHERE s.digest = $1 AND s.expires_at > $2""",
            digest(token),
            now,
        )
        return _one(Consultant, row)

    async def end_session(self, token: str) -> None:
        await self.conn.execute("DELETE FROM sessions WHERE digest = $1", digest(token))

    async def log_access(self, consultant_id: UUID, action: str, case_id: UUID | None = None) -> None:
        """Every view and action of a consultant, in the shared access log (NEN 7513 style): the
        consultant sees across organisations, so each look is on record."""
        actor = Actor("consultant", str(consultant_id))
        if case_id is None:  # the queue or the sign-in: no one record
            await access_log.record(self.conn, actor, Action.READ, "workbench", str(consultant_id))
        else:
            await access_log.record(self.conn, actor, _ACTIONS.get(action, Action.UPDATE), "case", case_id)

    # --- regions and Wmo desks ------------------------------------------------------------------

    async def set_region(self, name: str, codes: Sequence[str]) -> None:
        await self.conn.execute(
            """INSERT INTO regions (name, municipality_codes) VALUES ($1, $2)
               ON CONFLICT (name) DO UPDATE SET municipality_codes = EXCLUDED.municipality_codes""",
            name,
            sorted(set(codes)),
        )

    async def regions(self) -> dict[str, list[str]]:
        return {r["name"]: list(r["municipality_codes"]) for r in await self.conn.fetch("SELECT * FROM regions")}

    async def covered_municipalities(self) -> list[str]:
        return [
            r["municipality_code"] for r in await self.conn.fetch("SELECT DISTINCT municipality_code FROM consultants")
        ]

    async def set_wmo_desk(self, code: str, name: str, email: str) -> None:
        await self.conn.execute(
            """INSERT INTO wmo_desks (municipality_code, name, email) VALUES ($1, $2, $3)
               ON CONFLICT (municipality_code) DO UPDATE SET name = EXCLUDED.name, email = EXCLUDED.email""",
            code,
            name,
            email,
        )

    async def wmo_desk(self, code: str) -> WmoDesk | None:
        return _one(WmoDesk, await self.conn.fetchrow("SELECT * FROM wmo_desks WHERE municipality_code = $1", code))

    # --- cases ----------------------------------------------------------------------------------

    async def ensure_case(
        self, case_id: UUID, subject: str, municipality_code: str, personal: dict[str, Any], now: datetime
    ) -> None:
        await self.conn.execute(
            """INSERT INTO cases (id, subject, municipality_code, personal, created_at, updated_at)
               VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (id) DO NOTHING""",
            case_id,
            subject,
            municipality_code,
            personal,
            now,
        )

    async def update_case(self, case_id: UUID, now: datetime, **fields: Any) -> None:
        """Set the given columns (names from this module's callers only, never from input)."""
        columns = list(fields)
        assignments = ", ".join(f"{c} = ${i + 3}" for i, c in enumerate(columns))
        await self.conn.execute(
            f"UPDATE cases SET updated_at = $2, {assignments} WHERE id = $1", case_id, now, *fields.values()
        )

    async def case(self, case_id: UUID, *, lock: bool = False) -> Case | None:
        return _one(
            Case, await self.conn.fetchrow(f"SELECT * FROM cases WHERE id = $1{' FOR UPDATE' if lock else ''}", case_id)
        )

    async def add_signal(self, case_id: UUID, signal: dict[str, Any], own_result: Any) -> bool:
        return (
            await self.conn.fetchval(
                """INSERT INTO case_signals (signal_id, case_id, received_at, organisation_name, source_kind, urgency,
                   observations, consent, own_result, personal)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (signal_id) DO NOTHING RETURNING true""",
                UUID(signal["signal_id"]),
                case_id,
                datetime.fromisoformat(signal["received_at"]),
                signal["organisation_name"],
                signal["source"]["kind"],
                signal["urgency"],
                signal["observations"],
                signal["consent"],
                own_result,
                signal,
            )
            or False
        )

    async def signals(self, case_id: UUID) -> list[CaseSignal]:
        rows = await self.conn.fetch("SELECT * FROM case_signals WHERE case_id = $1 ORDER BY received_at", case_id)
        return [CaseSignal(**r) for r in rows]

    async def untold_signals(self, case_id: UUID, exclude_organisation: str) -> list[UUID]:
        """Signals whose referrer has not been told a person has the case (the consultant's own excluded)."""
        return [
            r["signal_id"]
            for r in await self.conn.fetch(
                """SELECT signal_id FROM case_signals WHERE case_id = $1 AND taken_up_at IS NULL
                   AND personal->>'organisation_id' <> $2 ORDER BY received_at""",
                case_id,
                exclude_organisation,
            )
        ]

    async def mark_told(self, signal_ids: Sequence[UUID], at: datetime) -> None:
        await self.conn.execute(
            "UPDATE case_signals SET taken_up_at = $2 WHERE signal_id = ANY($1::uuid[])", list(signal_ids), at
        )

    async def add_event(
        self,
        case_id: UUID,
        at: datetime,
        kind: str,
        detail: dict[str, Any] | None = None,
        personal: dict[str, Any] | None = None,
        by: str | None = None,
    ) -> None:
        await self.conn.execute(
            "INSERT INTO case_events (case_id, at, kind, detail, personal, by) VALUES ($1, $2, $3, $4, $5, $6)",
            case_id,
            at,
            kind,
            detail or {},
            personal,
            by,
        )

    async def events(self, case_id: UUID) -> list[CaseEvent]:
        rows = await self.conn.fetch("SELECT * FROM case_events WHERE case_id = $1 ORDER BY at, id", case_id)
        return [CaseEvent(**r) for r in rows]

    async def propose(self, case_id: UUID, service_id: str, service_name: str, at: datetime) -> None:
        await self.conn.execute(
            """INSERT INTO case_referrals (case_id, service_id, service_name, status, created_at, updated_at)
               VALUES ($1, $2, $3, $5, $4, $4) ON CONFLICT (case_id, service_id) DO NOTHING""",
            case_id,
            service_id,
            service_name,
            at,
            ReferralStatus.REQUESTED.value,
        )

    async def referral_update(
        self,
        case_id: UUID,
        service_id: str,
        referral_id: UUID,
        service_name: str,
        status: str,
        reason_code: str | None,
        at: datetime,
    ) -> None:
        await self.conn.execute(
            """INSERT INTO case_referrals (case_id, service_id, referral_id, service_name, status, reason_code,
                   created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
               ON CONFLICT (case_id, service_id) DO UPDATE SET referral_id = EXCLUDED.referral_id,
                   status = EXCLUDED.status, reason_code = EXCLUDED.reason_code, updated_at = EXCLUDED.updated_at
               WHERE case_referrals.updated_at <= EXCLUDED.updated_at""",
            case_id,
            service_id,
            referral_id,
            service_name,
            status,
            reason_code,
            at,
        )

    async def referrals(self, case_ids: Sequence[UUID]) -> list[CaseReferral]:
        rows = await self.conn.fetch(
            "SELECT * FROM case_referrals WHERE case_id = ANY($1::uuid[]) ORDER BY created_at", list(case_ids)
        )
        return [CaseReferral(**r) for r in rows]

    async def open_cases(
        self, municipality_codes: Sequence[str] | None = None, *, outside: Sequence[str] = ()
    ) -> list[Case]:
        """Open cases of these municipalities; or (None) of every municipality not in ``outside``,
        plus every crisis (a crisis past its deadline goes to the back-up)."""
        if municipality_codes is not None:
            rows = await self.conn.fetch(
                """SELECT * FROM cases WHERE closed_at IS NULL AND municipality_code = ANY($1::text[])
                   ORDER BY created_at""",
                list(municipality_codes),
            )
        else:
            rows = await self.conn.fetch(
                """SELECT * FROM cases WHERE closed_at IS NULL
                   AND (municipality_code <> ALL($1::text[]) OR crisis_since IS NOT NULL) ORDER BY created_at""",
                list(outside),
            )
        return [Case(**r) for r in rows]

    async def erase(self, signal_ids: Sequence[UUID], case_ids: Sequence[UUID], whole_cases: bool) -> None:
        """Forget the signals; whole cases for a person's erasure, else only cases left empty."""
        touched = [
            r["case_id"]
            for r in await self.conn.fetch(
                "DELETE FROM case_signals WHERE signal_id = ANY($1::uuid[]) RETURNING case_id", list(signal_ids)
            )
        ]
        if whole_cases:
            await self.conn.execute("DELETE FROM cases WHERE id = ANY($1::uuid[])", [*case_ids, *touched])
        else:
            await self.conn.execute(
                """DELETE FROM cases c WHERE c.id = ANY($1::uuid[])
                   AND NOT EXISTS (SELECT 1 FROM case_signals s WHERE s.case_id = c.id)""",
                touched,
            )
