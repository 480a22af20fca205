"""SQL for the signals store: organisations (their keys are ``shared.auth`` credentials),
signals, idempotency keys, stages, erasures."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from services.signals.domain import (
    STAGE_RANK,
    ErasureRecord,
    Organisation,
    SelfReferral,
    Signal,
    Stage,
    StageRecord,
)
from shared.auth import hash_key
from shared.retention import Purge


class SignalsRepository:
    """The signals store, read and written inside a unit of work's transaction."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def organisation(self, organisation_id: UUID) -> Organisation | None:
        row = await self.conn.fetchrow("SELECT id, name, kind FROM organisations WHERE id = $1", organisation_id)
        return Organisation(**row) if row else None

    async def upsert_organisation(self, name: str, kind: str) -> UUID:
        return await self.conn.fetchval(
            """INSERT INTO organisations (id, name, kind) VALUES ($1, $2, $3)
               ON CONFLICT (name) DO UPDATE SET kind = EXCLUDED.kind RETURNING id""",
            uuid4(),
            name,
            kind,
        )

    async def claim_idempotency_key(
        self, organisation_id: UUID, key: str, request_hash: str, signal_id: UUID
    ) -> tuple[UUID, str] | None:
        """Claim ``key`` for this request; if it was used before, return (signal id, hash) of then.

        ON CONFLICT DO NOTHING waits for a concurrent transaction holding the same key, so two
        racing retries end with one signal."""
        inserted = await self.conn.fetchval(
            """INSERT INTO idempotency_keys (organisation_id, key, request_hash, signal_id)
               VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING true""",
            organisation_id,
            key,
            request_hash,
            signal_id,
        )
        if inserted:
            return None
        row = await self.conn.fetchrow(
            "SELECT signal_id, request_hash FROM idempotency_keys WHERE organisation_id = $1 AND key = $2",
            organisation_id,
            key,
        )
        return row["signal_id"], row["request_hash"]

    async def insert_signal(
        self,
        *,
        signal_id: UUID,
        organisation_id: UUID,
        pseudonym: str,
        municipality_code: str,
        source_kind: str,
        urgency: str,
        received_at: datetime,
        body: dict[str, Any],
        event_id: UUID,
    ) -> None:
        await self.conn.execute(
            """INSERT INTO signals (id, organisation_id, caregiver_pseudonym, municipality_code,
                   source_kind, urgency, received_at, body)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
            signal_id,
            organisation_id,
            pseudonym,
            municipality_code,
            source_kind,
            urgency,
            received_at,
            body,
        )
        await self.add_stage(signal_id, Stage.RECEIVED, received_at, event_id, {})

    async def add_stage(
        self,
        signal_id: UUID,
        stage: Stage,
        occurred_at: datetime,
        event_id: UUID,
        detail: dict[str, Any],
        case_id: UUID | None = None,
    ) -> bool:
        """Record a stage; returns False when the signal is unknown here."""
        updated = await self.conn.execute(
            """UPDATE signals SET
                   status = CASE WHEN status_rank < $2 THEN $3 ELSE status END,
                   status_rank = GREATEST(status_rank, $2),
                   case_id = COALESCE($4, case_id),
                   updated_at = now()
               WHERE id = $1""",
            signal_id,
            STAGE_RANK[stage],
            stage,
            case_id,
        )
        if updated == "UPDATE 0":
            return False
        await self.conn.execute(
            """INSERT INTO signal_stages (signal_id, stage, occurred_at, event_id, detail)
               VALUES ($1, $2, $3, $4, $5) ON CONFLICT (event_id) DO NOTHING""",
            signal_id,
            stage,
            occurred_at,
            event_id,
            detail,
        )
        return True

    async def signal_with_stages(
        self, signal_id: UUID, organisation_id: UUID
    ) -> tuple[Signal, list[StageRecord]] | None:
        signal = await self.conn.fetchrow(
            """SELECT id, status, received_at, case_id FROM signals
               WHERE id = $1 AND organisation_id = $2""",
            signal_id,
            organisation_id,
        )
        if signal is None:
            return None
        stages = await self.conn.fetch(
            """SELECT stage, occurred_at, detail FROM signal_stages
               WHERE signal_id = $1 ORDER BY occurred_at, id""",
            signal_id,
        )
        return Signal(**signal), [StageRecord(**row) for row in stages]

    # --- erasure -------------------------------------------------------------------------

    async def caregivers_of(
        self,
        *,
        pseudonyms: list[str],
        signal_ids: list[UUID] | None,
        posted_by: UUID | None,
    ) -> list[str]:
        """Pseudonyms of the caregivers of these signals (by pseudonym or by id), of one
        organisation's signals only unless ``posted_by`` is None."""
        rows = await self.conn.fetch(
            """SELECT DISTINCT caregiver_pseudonym FROM signals
               WHERE ($1::uuid IS NULL OR organisation_id = $1)
                 AND (caregiver_pseudonym = ANY($2::text[]) OR id = ANY($3::uuid[]))
               ORDER BY caregiver_pseudonym""",
            posted_by,
            pseudonyms,
            signal_ids or [],
        )
        return [r["caregiver_pseudonym"] for r in rows]

    async def signals_of_caregivers(self, pseudonyms: list[str], posted_by: UUID | None) -> list[Signal]:
        """The signals about these caregivers (one organisation's, or everyone's when
        ``posted_by`` is None), locked for erasure."""
        rows = await self.conn.fetch(
            """SELECT id, caregiver_pseudonym, case_id, status, received_at FROM signals
               WHERE caregiver_pseudonym = ANY($1::text[]) AND ($2::uuid IS NULL OR organisation_id = $2)
               ORDER BY received_at FOR UPDATE""",
            pseudonyms,
            posted_by,
        )
        return [Signal(**row) for row in rows]

    async def delete_signals(self, signal_ids: list[UUID]) -> None:
        await self.conn.execute("DELETE FROM signal_stages WHERE signal_id = ANY($1::uuid[])", signal_ids)
        await self.conn.execute("DELETE FROM idempotency_keys WHERE signal_id = ANY($1::uuid[])", signal_ids)
        await self.conn.execute("DELETE FROM signals WHERE id = ANY($1::uuid[])", signal_ids)

    async def lock_erasure_request(self, request_digest: str) -> UUID | None:
        """Serialise identical requests; the id of the erasure an earlier one made, if any."""
        await self.conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", request_digest)
        return await self.conn.fetchval("SELECT id FROM erasures WHERE request_digest = $1", request_digest)

    async def insert_erasure(self, **row: Any) -> None:
        await self.conn.execute(
            """INSERT INTO erasures (id, organisation_id, officer_id, scope, request_digest, requested_at,
                   signals, event_ids)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
            row["id"],
            row["organisation_id"],
            row["officer_id"],
            row["scope"],
            row["request_digest"],
            row["requested_at"],
            row["signals"],
            row["event_ids"],
        )
        await self.conn.execute(
            """INSERT INTO erasure_audit (erasure_id, requested_at, role, requested_by, requester, scope,
                   identified_by, subject_digests, signals_erased)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)""",
            row["id"],
            row["requested_at"],
            row["role"],
            row["organisation_id"] or row["officer_id"],
            row["requester"],
            row["scope"],
            row["identified_by"],
            row["subject_digests"],
            row["signals"],
        )

    async def erasure_of(self, erasure_id: UUID, requested_by: UUID) -> ErasureRecord | None:
        """An erasure its requester asked for, with the number of its events still waiting for the relay."""
        row = await self.conn.fetchrow(
            """SELECT e.id, e.requested_at, e.scope,
                      (SELECT count(*) FROM outbox o
                       WHERE o.event_id = ANY(e.event_ids) AND o.published_at IS NULL) AS unpublished
               FROM erasures e WHERE e.id = $1 AND $2 IN (e.organisation_id, e.officer_id)""",
            erasure_id,
            requested_by,
        )
        return ErasureRecord(**row) if row else None

    async def erasure_log(self, limit: int) -> list[asyncpg.Record]:
        return await self.conn.fetch("SELECT * FROM erasure_audit ORDER BY id DESC LIMIT $1", limit)

    # --- front doors ---------------------------------------------------------------------

    async def organisation_for_key(self, key: str) -> Organisation | None:
        """The organisation whose live partner API key this is (the signal form's sign-in)."""
        row = await self.conn.fetchrow(
            """SELECT o.id, o.name, o.kind FROM credentials c JOIN organisations o ON o.id::text = c.subject
               WHERE c.key_hash = $1 AND c.revoked_at IS NULL AND (c.expires_at IS NULL OR c.expires_at > now())""",
            hash_key(key),
        )
        return Organisation(**row) if row else None

    async def organisation_by_name(self, name: str) -> Organisation | None:
        row = await self.conn.fetchrow("SELECT id, name, kind FROM organisations WHERE name = $1", name)
        return Organisation(**row) if row else None

    async def add_sign_in_token(self, token_hash: str, organisation_id: UUID, hours: float) -> None:
        await self.conn.execute(
            """INSERT INTO sign_in_tokens (token_hash, organisation_id, expires_at)
               VALUES ($1, $2, now() + make_interval(secs => $3::float8 * 3600))""",
            token_hash,
            organisation_id,
            hours,
        )

    async def use_sign_in_token(self, token_hash: str) -> UUID | None:
        """The organisation of an unused, unexpired sign-in link, which is used up by this call."""
        return await self.conn.fetchval(
            """UPDATE sign_in_tokens SET used_at = now()
               WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now() RETURNING organisation_id""",
            token_hash,
        )

    async def signal_and_stages(self, signal_id: UUID) -> tuple[Signal, list[StageRecord]] | None:
        """A signal and its stages whoever posted it: for the caregiver's own signed status link."""
        organisation_id = await self.conn.fetchval("SELECT organisation_id FROM signals WHERE id = $1", signal_id)
        return None if organisation_id is None else await self.signal_with_stages(signal_id, organisation_id)

    async def recent_self_referrals(self, email_digest: str, client_digest: str) -> int:
        """Submissions from this address or this client in the last hour (the rate limit)."""
        return await self.conn.fetchval(
            """SELECT count(*) FROM self_referrals WHERE created_at > now() - interval '1 hour'
                 AND (email_digest = $1 OR client_digest = $2)""",
            email_digest,
            client_digest,
        )

    async def add_self_referral(
        self,
        *,
        id: UUID,
        token_hash: str,
        email_digest: str,
        client_digest: str,
        concern: bool,
        body: dict[str, Any],
        keep_hours: float,
    ) -> None:
        await self.conn.execute(
            """INSERT INTO self_referrals (id, token_hash, email_digest, client_digest, concern, body, expires_at)
               VALUES ($1, $2, $3, $4, $5, $6, now() + make_interval(secs => $7::float8 * 3600))""",
            id,
            token_hash,
            email_digest,
            client_digest,
            concern,
            body,
            keep_hours,
        )

    async def self_referral_for_token(self, token_hash: str) -> SelfReferral | None:
        """The submission this confirmation link belongs to, locked; also when already confirmed."""
        row = await self.conn.fetchrow(
            """SELECT id, concern, body, signal_id, expires_at > now() AS live FROM self_referrals
               WHERE token_hash = $1 FOR UPDATE""",
            token_hash,
        )
        return SelfReferral(**row) if row else None

    async def confirm_self_referral(self, referral_id: UUID, signal_id: UUID) -> None:
        # The personal data now lives in the signal; the submission keeps only the link to it.
        await self.conn.execute(
            "UPDATE self_referrals SET body = NULL, signal_id = $2, confirmed_at = now() WHERE id = $1",
            referral_id,
            signal_id,
        )

    async def purge_self_referrals(self) -> int:
        """Delete unconfirmed submissions past their day, and confirmed ones' rows once a day old."""
        result = await self.conn.execute("DELETE FROM self_referrals WHERE expires_at <= now()")
        return int(result.split()[-1])


# --- retention -----------------------------------------------------------------------


def retention_purges(settings: Any) -> list[Purge]:
    """A signal (with its stages and idempotency key) goes once nothing happened to it for
    ``retention_signal_days``; idempotency keys alone go after the retry window."""
    return [
        Purge(
            "signals",
            settings.retention_signal_days,
            """
            WITH gone AS (SELECT id FROM signals WHERE received_at < $1 AND updated_at < $1
                          ORDER BY received_at LIMIT $2 FOR UPDATE SKIP LOCKED),
                 stages AS (DELETE FROM signal_stages WHERE signal_id IN (SELECT id FROM gone)),
                 keys AS (DELETE FROM idempotency_keys WHERE signal_id IN (SELECT id FROM gone))
            DELETE FROM signals WHERE id IN (SELECT id FROM gone) RETURNING 1""",
        ),
        Purge(
            "idempotency_keys",
            settings.retention_idempotency_days,
            """
            DELETE FROM idempotency_keys WHERE (organisation_id, key) IN (
                SELECT organisation_id, key FROM idempotency_keys WHERE created_at < $1 LIMIT $2)
            RETURNING 1""",
        ),
    ]
