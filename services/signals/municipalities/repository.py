"""SQL for what municipalities get: credentials, stream salts, anonymous facts, the
anonymised stream, webhook subscriptions, and the rows statistics are computed from."""

from __future__ import annotations

import secrets
from datetime import date, datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from services.signals.municipalities.anonymise import SignalFacts
from services.signals.municipalities.districts import Area
from services.signals.repository import hash_key
from shared.contracts import Need, RiskLevel, SourceKind

# --- credentials ---------------------------------------------------------------------


async def municipality_for_key(conn: asyncpg.Connection, key: str) -> str | None:
    return await conn.fetchval(
        "SELECT municipality_code FROM municipality_keys WHERE key_hash = $1 AND revoked_at IS NULL",
        hash_key(key),
    )


async def add_municipality_key(conn: asyncpg.Connection, municipality_code: str, key: str, label: str) -> None:
    await conn.execute(
        """INSERT INTO municipality_keys (key_hash, municipality_code, label) VALUES ($1, $2, $3)
           ON CONFLICT (key_hash) DO UPDATE SET municipality_code = EXCLUDED.municipality_code,
               label = EXCLUDED.label, revoked_at = NULL""",
        hash_key(key), municipality_code, label,
    )


async def revoke_municipality_key(conn: asyncpg.Connection, key: str) -> bool:
    result = await conn.execute(
        "UPDATE municipality_keys SET revoked_at = now() WHERE key_hash = $1 AND revoked_at IS NULL",
        hash_key(key),
    )
    return result != "UPDATE 0"


async def streamed_municipalities(conn: asyncpg.Connection) -> list[str]:
    """Municipalities with an active credential or a stream already."""
    if not await conn.fetchval("SELECT to_regclass('municipal_streams') IS NOT NULL"):
        return []  # a database not migrated yet has neither
    rows = await conn.fetch(
        """SELECT municipality_code FROM municipality_keys WHERE revoked_at IS NULL
           UNION SELECT municipality_code FROM municipal_streams"""
    )
    return [r["municipality_code"] for r in rows]


# --- per signal: the source row, the salt and the facts ------------------------------


async def signal_source(conn: asyncpg.Connection, signal_id: UUID) -> asyncpg.Record:
    """What the facts are first computed from: the caregiver and source of the accepted body."""
    return await conn.fetchrow(
        """SELECT received_at, caregiver_pseudonym, body->'caregiver' AS caregiver,
                  body->'source'->>'kind' AS source_kind
           FROM signals WHERE id = $1""",
        signal_id,
    )


async def salt_for(conn: asyncpg.Connection, caregiver_pseudonym: str) -> bytes:
    await conn.execute(
        "INSERT INTO stream_salts (caregiver_pseudonym, salt) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        caregiver_pseudonym, secrets.token_bytes(32),
    )
    return await conn.fetchval("SELECT salt FROM stream_salts WHERE caregiver_pseudonym = $1", caregiver_pseudonym)


async def facts_for_update(conn: asyncpg.Connection, signal_id: UUID) -> SignalFacts | None:
    row = await conn.fetchrow("SELECT * FROM signal_facts WHERE signal_id = $1 FOR UPDATE", signal_id)
    if row is None:
        return None
    return SignalFacts(
        municipality_code=row["municipality_code"],
        received_month=row["received_month"],
        source_kind=SourceKind(row["source_kind"]),
        area=Area(kind=row["area_kind"], code=row["area_code"]) if row["area_kind"] else None,
        age_band=row["age_band"],
        risk_level=RiskLevel(row["risk_level"]) if row["risk_level"] else None,
        needs=tuple(Need(n) for n in row["needs"]),
        hours_to_match=row["hours_to_match"],
        hours_to_first_contact=row["hours_to_first_contact"],
    )


async def save_facts(conn: asyncpg.Connection, signal_id: UUID, facts: SignalFacts) -> None:
    await conn.execute(
        """INSERT INTO signal_facts (id, signal_id, municipality_code, received_month, source_kind,
               area_kind, area_code, age_band, risk_level, needs, hours_to_match, hours_to_first_contact)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
           ON CONFLICT (signal_id) DO UPDATE SET risk_level = EXCLUDED.risk_level,
               needs = EXCLUDED.needs, hours_to_match = EXCLUDED.hours_to_match,
               hours_to_first_contact = EXCLUDED.hours_to_first_contact""",
        uuid4(), signal_id, facts.municipality_code, facts.received_month, facts.source_kind.value,
        facts.area.kind if facts.area else None, facts.area.code if facts.area else None,
        facts.age_band, facts.risk_level.value if facts.risk_level else None,
        [n.value for n in facts.needs], facts.hours_to_match, facts.hours_to_first_contact,
    )


# --- the stream ----------------------------------------------------------------------


async def append_event(
    conn: asyncpg.Connection, municipality_code: str, event_id: UUID, event_type: str, body: str,
) -> int:
    """Add an event to the municipality's stream; returns its sequence number.

    Call last in the transaction: the stream's row stays locked until commit."""
    seq = await conn.fetchval(
        """INSERT INTO municipal_streams (municipality_code, last_seq) VALUES ($1, 1)
           ON CONFLICT (municipality_code) DO UPDATE SET last_seq = municipal_streams.last_seq + 1
           RETURNING last_seq""",
        municipality_code,
    )
    await conn.execute(
        """INSERT INTO municipal_events (municipality_code, seq, event_id, event_type, body)
           VALUES ($1, $2, $3, $4, $5)""",
        municipality_code, seq, event_id, event_type, body,
    )
    return seq


async def events_after(
    conn: asyncpg.Connection | asyncpg.Pool, municipality_code: str, seq: int, limit: int,
) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT seq, event_type, body FROM municipal_events
           WHERE municipality_code = $1 AND seq > $2 ORDER BY seq LIMIT $3""",
        municipality_code, seq, limit,
    )


async def last_seq_before(conn: asyncpg.Connection | asyncpg.Pool, municipality_code: str,
                          moment: datetime | None) -> int:
    """The cursor that replays from ``moment`` (None: from now, only new events)."""
    if moment is None:
        found = await conn.fetchval(
            "SELECT last_seq FROM municipal_streams WHERE municipality_code = $1", municipality_code)
    else:
        found = await conn.fetchval(
            """SELECT max(seq) FROM municipal_events
               WHERE municipality_code = $1 AND created_at < $2""",
            municipality_code, moment,
        )
    return found or 0


# --- webhooks ------------------------------------------------------------------------


async def add_webhook(
    conn: asyncpg.Connection, municipality_code: str, url: str, secret: str, delivered_seq: int,
) -> asyncpg.Record:
    return await conn.fetchrow(
        """INSERT INTO municipal_webhooks (id, municipality_code, url, secret, delivered_seq)
           VALUES ($1, $2, $3, $4, $5) RETURNING id, url, delivered_seq, attempts, last_error, created_at""",
        uuid4(), municipality_code, url, secret, delivered_seq,
    )


async def webhooks_of(conn: asyncpg.Connection, municipality_code: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT id, url, delivered_seq, attempts, last_error, created_at FROM municipal_webhooks
           WHERE municipality_code = $1 ORDER BY created_at""",
        municipality_code,
    )


async def delete_webhook(conn: asyncpg.Connection, municipality_code: str, webhook_id: UUID) -> bool:
    result = await conn.execute(
        "DELETE FROM municipal_webhooks WHERE id = $1 AND municipality_code = $2", webhook_id, municipality_code
    )
    return result != "DELETE 0"


async def claim_due_webhooks(conn: asyncpg.Connection, limit: int) -> list[asyncpg.Record]:
    """Webhooks due for delivery, locked so that another replica skips them."""
    return await conn.fetch(
        """SELECT id, municipality_code, url, secret, delivered_seq, attempts FROM municipal_webhooks
           WHERE next_attempt_at <= now() ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED""",
        limit,
    )


async def webhook_delivered(conn: asyncpg.Connection, webhook_id: UUID, seq: int) -> None:
    await conn.execute(
        """UPDATE municipal_webhooks SET delivered_seq = $2, attempts = 0, last_error = NULL
           WHERE id = $1""",
        webhook_id, seq,
    )


async def webhook_failed(conn: asyncpg.Connection, webhook_id: UUID, error: str, retry_in_seconds: float) -> None:
    await conn.execute(
        """UPDATE municipal_webhooks SET attempts = attempts + 1, last_error = $2,
               next_attempt_at = now() + make_interval(secs => $3)
           WHERE id = $1""",
        webhook_id, error[:500], retry_in_seconds,
    )


# --- statistics ----------------------------------------------------------------------
# The person behind a fact is the caregiver's pseudonym while the signal exists. Erased
# facts keep nothing that tells whose they were, so all of them together count as one
# person: a lower bound, which errs towards more suppression, never less.


async def counted_facts(
    conn: asyncpg.Connection, municipality_code: str, first: date, last: date,
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT f.received_month, f.area_kind, f.area_code, f.source_kind, f.risk_level,
                  f.hours_to_match, f.hours_to_first_contact,
                  COALESCE(s.caregiver_pseudonym, 'erased') AS person
           FROM signal_facts f LEFT JOIN signals s ON s.id = f.signal_id
           WHERE f.municipality_code = $1 AND f.received_month BETWEEN $2 AND $3""",
        municipality_code, first, last,
    )
    return [dict(r) for r in rows]


# --- erasure -------------------------------------------------------------------------


async def forget_caregivers(conn: asyncpg.Connection, pseudonyms: list[str], signal_ids: list[UUID]) -> None:
    """Cut the link between the caregivers and what they leave behind: the stream salts go,
    the facts lose their signal id and stay as anonymous facts."""
    await conn.execute("DELETE FROM stream_salts WHERE caregiver_pseudonym = ANY($1::text[])", pseudonyms)
    await conn.execute("UPDATE signal_facts SET signal_id = NULL WHERE signal_id = ANY($1::uuid[])", signal_ids)
