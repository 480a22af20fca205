"""SQL for the signals store: organisations (their keys are ``shared.auth`` credentials),
signals, idempotency keys, stages, erasures."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from shared.retention import Purge

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


async def organisation(conn: asyncpg.Connection, organisation_id: UUID) -> Organisation | None:
    row = await conn.fetchrow("SELECT id, name, kind FROM organisations WHERE id = $1", organisation_id)
    return Organisation(**row) if row else None


async def upsert_organisation(conn: asyncpg.Connection, name: str, kind: str) -> UUID:
    return await conn.fetchval(
        """INSERT INTO organisations (id, name, kind) VALUES ($1, $2, $3)
           ON CONFLICT (name) DO UPDATE SET kind = EXCLUDED.kind RETURNING id""",
        uuid4(), name, kind,
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


# --- retention -----------------------------------------------------------------------


def retention_purges(settings: Any) -> list[Purge]:
    """A signal (with its stages and idempotency key) goes once nothing happened to it for
    ``retention_signal_days``; idempotency keys alone go after the retry window."""
    return [
        Purge("signals", settings.retention_signal_days, """
            WITH gone AS (SELECT id FROM signals WHERE received_at < $1 AND updated_at < $1
                          ORDER BY received_at LIMIT $2 FOR UPDATE SKIP LOCKED),
                 stages AS (DELETE FROM signal_stages WHERE signal_id IN (SELECT id FROM gone)),
                 keys AS (DELETE FROM idempotency_keys WHERE signal_id IN (SELECT id FROM gone))
            DELETE FROM signals WHERE id IN (SELECT id FROM gone) RETURNING 1"""),
        Purge("idempotency_keys", settings.retention_idempotency_days, """
            DELETE FROM idempotency_keys WHERE (organisation_id, key) IN (
                SELECT organisation_id, key FROM idempotency_keys WHERE created_at < $1 LIMIT $2)
            RETURNING 1"""),
    ]


# --- front doors ---------------------------------------------------------------------


async def organisation_by_id(conn: asyncpg.Connection, organisation_id: UUID) -> Organisation | None:
    row = await conn.fetchrow("SELECT id, name, kind FROM organisations WHERE id = $1", organisation_id)
    return Organisation(**row) if row else None


async def organisation_by_name(conn: asyncpg.Connection, name: str) -> Organisation | None:
    row = await conn.fetchrow("SELECT id, name, kind FROM organisations WHERE name = $1", name)
    return Organisation(**row) if row else None


async def add_sign_in_token(conn: asyncpg.Connection, token_hash: str, organisation_id: UUID, hours: float) -> None:
    await conn.execute(
        """INSERT INTO sign_in_tokens (token_hash, organisation_id, expires_at)
           VALUES ($1, $2, now() + make_interval(secs => $3::float8 * 3600))""",
        token_hash, organisation_id, hours)


async def use_sign_in_token(conn: asyncpg.Connection, token_hash: str) -> UUID | None:
    """The organisation of an unused, unexpired sign-in link, which is used up by this call."""
    return await conn.fetchval(
        """UPDATE sign_in_tokens SET used_at = now()
           WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now() RETURNING organisation_id""",
        token_hash)


async def signal_and_stages(
    conn: asyncpg.Connection, signal_id: UUID,
) -> tuple[asyncpg.Record, list[asyncpg.Record]] | None:
    """A signal and its stages whoever posted it: for the caregiver's own signed status link."""
    organisation_id = await conn.fetchval("SELECT organisation_id FROM signals WHERE id = $1", signal_id)
    return None if organisation_id is None else await signal_with_stages(conn, signal_id, organisation_id)


async def recent_self_referrals(conn: asyncpg.Connection, email_digest: str, client_digest: str) -> int:
    """Submissions from this address or this client in the last hour (the rate limit)."""
    return await conn.fetchval(
        """SELECT count(*) FROM self_referrals WHERE created_at > now() - interval '1 hour'
             AND (email_digest = $1 OR client_digest = $2)""",
        email_digest, client_digest)


async def add_self_referral(conn: asyncpg.Connection, *, id: UUID, token_hash: str, email_digest: str,
                            client_digest: str, concern: bool, body: dict[str, Any], keep_hours: float) -> None:
    await conn.execute(
        """INSERT INTO self_referrals (id, token_hash, email_digest, client_digest, concern, body, expires_at)
           VALUES ($1, $2, $3, $4, $5, $6, now() + make_interval(secs => $7::float8 * 3600))""",
        id, token_hash, email_digest, client_digest, concern, body, keep_hours)


async def self_referral_for_token(conn: asyncpg.Connection, token_hash: str) -> asyncpg.Record | None:
    """The submission this confirmation link belongs to, locked; also when already confirmed."""
    return await conn.fetchrow(
        "SELECT id, concern, body, signal_id, expires_at > now() AS live FROM self_referrals "
        "WHERE token_hash = $1 FOR UPDATE",
        token_hash,
    )


async def confirm_self_referral(conn: asyncpg.Connection, referral_id: UUID, signal_id: UUID) -> None:
    # The personal data now lives in the signal; the submission keeps only the link to it.
    await conn.execute(
        "UPDATE self_referrals SET body = NULL, signal_id = $2, confirmed_at = now() WHERE id = $1",
        referral_id, signal_id)


async def purge_self_referrals(conn: asyncpg.Connection) -> int:
    """Delete unconfirmed submissions past their day, and confirmed ones' rows once a day old."""
    result = await conn.execute("DELETE FROM self_referrals WHERE expires_at <= now()")
    return int(result.split()[-1])
