"""SQL for the signals store: organisations and keys, signals, idempotency keys, stages,
erasures."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg

# How far along the pipeline a stage is; the signal's status is its furthest stage. A
# referral's answer, the follow-up and a due re-screen only add to the timeline: rank -1
# never wins, so they leave the status as it is.
STAGE_RANK = {
    "received": 0, "screened": 1, "escalated": 2, "matched": 3, "notified": 4,
    "referral": -1, "follow_up": -1, "rescreen_due": -1, "taken_up": -1, "closed": -1,
}


@dataclass(frozen=True)
class Organisation:
    id: UUID
    name: str
    kind: str


def hash_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


async def organisation_for_key(conn: asyncpg.Connection, api_key: str) -> Organisation | None:
    row = await conn.fetchrow(
        """SELECT o.id, o.name, o.kind FROM api_keys k JOIN organisations o ON o.id = k.organisation_id
           WHERE k.key_hash = $1 AND k.revoked_at IS NULL""",
        hash_key(api_key),
    )
    return Organisation(**row) if row else None


async def upsert_organisation(conn: asyncpg.Connection, name: str, kind: str) -> UUID:
    return await conn.fetchval(
        """INSERT INTO organisations (id, name, kind) VALUES ($1, $2, $3)
           ON CONFLICT (name) DO UPDATE SET kind = EXCLUDED.kind RETURNING id""",
        uuid4(), name, kind,
    )


async def add_api_key(conn: asyncpg.Connection, organisation_id: UUID, api_key: str, label: str) -> None:
    await conn.execute(
        """INSERT INTO api_keys (key_hash, organisation_id, label) VALUES ($1, $2, $3)
           ON CONFLICT (key_hash) DO UPDATE SET organisation_id = EXCLUDED.organisation_id,
               revoked_at = NULL""",
        hash_key(api_key), organisation_id, label,
    )


async def claim_idempotency_key(
    conn: asyncpg.Connection, organisation_id: UUID, key: str, request_hash: str, signal_id: UUID
) -> tuple[UUID, str] | None:
    """Claim ``key`` for this request; if it was used before, return (signal id, hash) of then.

    ON CONFLICT DO NOTHING waits for a concurrent transaction holding the same key, so two
    racing retries end with one signal."""
    inserted = await conn.fetchval(
        """INSERT INTO idempotency_keys (organisation_id, key, request_hash, signal_id)
           VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING true""",
        organisation_id, key, request_hash, signal_id,
    )
    if inserted:
        return None
    row = await conn.fetchrow(
        "SELECT signal_id, request_hash FROM idempotency_keys WHERE organisation_id = $1 AND key = $2",
        organisation_id, key,
    )
    return row["signal_id"], row["request_hash"]


async def insert_signal(
    conn: asyncpg.Connection, *, signal_id: UUID, organisation_id: UUID, pseudonym: str,
    municipality_code: str, source_kind: str, urgency: str, received_at: datetime,
    body: dict[str, Any], event_id: UUID,
) -> None:
    await conn.execute(
        """INSERT INTO signals (id, organisation_id, caregiver_pseudonym, municipality_code,
               source_kind, urgency, received_at, body)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
        signal_id, organisation_id, pseudonym, municipality_code, source_kind, urgency,
        received_at, body,
    )
    await add_stage(conn, signal_id, "received", received_at, event_id, {})


async def add_stage(
    conn: asyncpg.Connection, signal_id: UUID, stage: str, occurred_at: datetime,
    event_id: UUID, detail: dict[str, Any], case_id: UUID | None = None,
) -> bool:
    """Record a stage; returns False when the signal is unknown here."""
    updated = await conn.execute(
        """UPDATE signals SET
               status = CASE WHEN status_rank < $2 THEN $3 ELSE status END,
               status_rank = GREATEST(status_rank, $2),
               case_id = COALESCE($4, case_id),
               updated_at = now()
           WHERE id = $1""",
        signal_id, STAGE_RANK[stage], stage, case_id,
    )
    if updated == "UPDATE 0":
        return False
    await conn.execute(
        """INSERT INTO signal_stages (signal_id, stage, occurred_at, event_id, detail)
           VALUES ($1, $2, $3, $4, $5) ON CONFLICT (event_id) DO NOTHING""",
        signal_id, stage, occurred_at, event_id, detail,
    )
    return True


async def signal_with_stages(
    conn: asyncpg.Connection, signal_id: UUID, organisation_id: UUID
) -> tuple[asyncpg.Record, list[asyncpg.Record]] | None:
    signal = await conn.fetchrow(
        """SELECT id, status, received_at, case_id FROM signals
           WHERE id = $1 AND organisation_id = $2""",
        signal_id, organisation_id,
    )
    if signal is None:
        return None
    stages = await conn.fetch(
        """SELECT stage, occurred_at, detail FROM signal_stages
           WHERE signal_id = $1 ORDER BY occurred_at, id""",
        signal_id,
    )
    return signal, stages


# --- erasure -------------------------------------------------------------------------


@dataclass(frozen=True)
class PrivacyOfficer:
    id: UUID
    name: str


async def privacy_officer_for_key(conn: asyncpg.Connection, key: str) -> PrivacyOfficer | None:
    row = await conn.fetchrow(
        "SELECT id, name FROM privacy_officer_keys WHERE key_hash = $1 AND revoked_at IS NULL", hash_key(key))
    return PrivacyOfficer(**row) if row else None


async def add_privacy_officer_key(conn: asyncpg.Connection, name: str, key: str, label: str) -> UUID:
    return await conn.fetchval(
        """INSERT INTO privacy_officer_keys (key_hash, id, name, label) VALUES ($1, $2, $3, $4)
           ON CONFLICT (key_hash) DO UPDATE SET name = EXCLUDED.name, label = EXCLUDED.label, revoked_at = NULL
           RETURNING id""",
        hash_key(key), uuid4(), name, label,
    )


async def caregivers_of(
    conn: asyncpg.Connection, *, pseudonyms: list[str], signal_ids: list[UUID] | None,
    posted_by: UUID | None,
) -> list[str]:
    """Pseudonyms of the caregivers of these signals (by pseudonym or by id), of one
    organisation's signals only unless ``posted_by`` is None."""
    rows = await conn.fetch(
        """SELECT DISTINCT caregiver_pseudonym FROM signals
           WHERE ($1::uuid IS NULL OR organisation_id = $1)
             AND (caregiver_pseudonym = ANY($2::text[]) OR id = ANY($3::uuid[]))
           ORDER BY caregiver_pseudonym""",
        posted_by, pseudonyms, signal_ids or [],
    )
    return [r["caregiver_pseudonym"] for r in rows]


async def signals_of_caregivers(
    conn: asyncpg.Connection, pseudonyms: list[str], posted_by: UUID | None,
) -> list[asyncpg.Record]:
    """The signals about these caregivers (one organisation's, or everyone's when
    ``posted_by`` is None), locked for erasure."""
    return await conn.fetch(
        """SELECT id, caregiver_pseudonym, case_id FROM signals
           WHERE caregiver_pseudonym = ANY($1::text[]) AND ($2::uuid IS NULL OR organisation_id = $2)
           ORDER BY received_at FOR UPDATE""",
        pseudonyms, posted_by,
    )


async def delete_signals(conn: asyncpg.Connection, signal_ids: list[UUID]) -> None:
    await conn.execute("DELETE FROM signal_stages WHERE signal_id = ANY($1::uuid[])", signal_ids)
    await conn.execute("DELETE FROM idempotency_keys WHERE signal_id = ANY($1::uuid[])", signal_ids)
    await conn.execute("DELETE FROM signals WHERE id = ANY($1::uuid[])", signal_ids)


async def lock_erasure_request(conn: asyncpg.Connection, request_digest: str) -> UUID | None:
    """Serialise identical requests; the id of the erasure an earlier one made, if any."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", request_digest)
    return await conn.fetchval("SELECT id FROM erasures WHERE request_digest = $1", request_digest)


async def insert_erasure(conn: asyncpg.Connection, **row: Any) -> None:
    await conn.execute(
        """INSERT INTO erasures (id, organisation_id, officer_id, scope, request_digest, requested_at,
               signals, event_ids)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
        row["id"], row["organisation_id"], row["officer_id"], row["scope"], row["request_digest"],
        row["requested_at"], row["signals"], row["event_ids"],
    )
    await conn.execute(
        """INSERT INTO erasure_audit (erasure_id, requested_at, role, requested_by, requester, scope,
               identified_by, subject_digests, signals_erased)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)""",
        row["id"], row["requested_at"], row["role"], row["organisation_id"] or row["officer_id"],
        row["requester"], row["scope"], row["identified_by"], row["subject_digests"], row["signals"],
    )


async def erasure_of(conn: asyncpg.Connection, erasure_id: UUID, requested_by: UUID) -> asyncpg.Record | None:
    """An erasure its requester asked for, with the number of its events still waiting for the relay."""
    return await conn.fetchrow(
        """SELECT e.id, e.requested_at, e.scope,
                  (SELECT count(*) FROM outbox o
                   WHERE o.event_id = ANY(e.event_ids) AND o.published_at IS NULL) AS unpublished
           FROM erasures e WHERE e.id = $1 AND $2 IN (e.organisation_id, e.officer_id)""",
        erasure_id, requested_by,
    )


async def erasure_log(conn: asyncpg.Connection, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT * FROM erasure_audit ORDER BY id DESC LIMIT $1", limit)
