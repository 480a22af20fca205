"""SQL for the municipalities store (credentials are ``shared.auth``): records waiting for release, the released
groups (each municipality's stream), webhook subscriptions, and the inbox purge."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from services.municipalities.domain import Record


# --- records waiting for release -----------------------------------------------------

_ROW_FIELDS = ("person", "arrived", "municipality_code")


async def add_waiting(conn: asyncpg.Connection, record: Record) -> None:
    rest = {k: v for k, v in dataclasses.asdict(record).items() if k not in _ROW_FIELDS}
    await conn.execute(
        """INSERT INTO waiting_records (person, arrived_at, municipality_code, record)
           VALUES ($1, $2, $3, $4)""",
        record.person, record.arrived, record.municipality_code, rest,
    )


async def waiting_for_update(conn: asyncpg.Connection) -> list[tuple[int, Record]]:
    """Every waiting record, locked until the release decision commits."""
    rows = await conn.fetch(
        "SELECT id, person, arrived_at, municipality_code, record FROM waiting_records ORDER BY id FOR UPDATE")
    found = []
    for row in rows:
        rest = dict(row["record"])
        for name in ("needs", "service_categories"):
            rest[name] = tuple(rest.get(name) or ())
        found.append((row["id"], Record(person=row["person"], arrived=row["arrived_at"],
                                        municipality_code=row["municipality_code"], **rest)))
    return found


async def delete_waiting(conn: asyncpg.Connection, ids: list[int]) -> None:
    await conn.execute("DELETE FROM waiting_records WHERE id = ANY($1::bigint[])", ids)


async def forget_person(conn: asyncpg.Connection, person: str) -> int:
    """Erasure: the person's records that still wait go; released groups were anonymous."""
    result = await conn.execute("DELETE FROM waiting_records WHERE person = $1", person)
    return int(result.split()[-1])


# --- the stream of released groups ---------------------------------------------------


async def append_release(
    conn: asyncpg.Connection, municipality_code: str, event_id: UUID, month: str, body: str,
    released_at: datetime,
) -> int:
    """Add a released group to the municipality's stream; returns its sequence number.

    Call last in the transaction: the stream's row stays locked until commit."""
    seq = await conn.fetchval(
        """INSERT INTO municipal_streams (municipality_code, last_seq) VALUES ($1, 1)
           ON CONFLICT (municipality_code) DO UPDATE SET last_seq = municipal_streams.last_seq + 1
           RETURNING last_seq""",
        municipality_code,
    )
    await conn.execute(
        """INSERT INTO released_groups (municipality_code, seq, event_id, month, body, released_at)
           VALUES ($1, $2, $3, $4, $5, $6)""",
        municipality_code, seq, event_id, month, body, released_at,
    )
    return seq


async def events_after(
    conn: asyncpg.Connection | asyncpg.Pool, municipality_code: str, seq: int, limit: int,
) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT seq, body FROM released_groups
           WHERE municipality_code = $1 AND seq > $2 ORDER BY seq LIMIT $3""",
        municipality_code, seq, limit,
    )


async def last_seq_before(conn: asyncpg.Connection | asyncpg.Pool, municipality_code: str,
                          moment: datetime | None) -> int:
    """The cursor that replays releases from ``moment`` (None: from now, only new ones)."""
    if moment is None:
        found = await conn.fetchval(
            "SELECT last_seq FROM municipal_streams WHERE municipality_code = $1", municipality_code)
    else:
        found = await conn.fetchval(
            """SELECT max(seq) FROM released_groups
               WHERE municipality_code = $1 AND released_at < $2""",
            municipality_code, moment,
        )
    return found or 0


async def released_in(
    conn: asyncpg.Connection, municipality_code: str, months: list[str],
) -> list[dict[str, Any]]:
    """The released groups of these months, for statistics."""
    rows = await conn.fetch(
        """SELECT body FROM released_groups WHERE municipality_code = $1 AND month = ANY($2::text[])
           ORDER BY seq""",
        municipality_code, months,
    )
    return [json.loads(r["body"])["payload"] for r in rows]


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


async def lease_due_webhooks(pool: asyncpg.Pool, limit: int, lease_seconds: float) -> list[asyncpg.Record]:
    """Webhooks due for delivery, leased in one statement (another replica skips them until
    the lease runs out): deliveries then run with no transaction open."""
    return await pool.fetch(
        """UPDATE municipal_webhooks SET next_attempt_at = now() + make_interval(secs => $2)
           WHERE id IN (SELECT id FROM municipal_webhooks WHERE next_attempt_at <= now()
                        ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)
           RETURNING id, municipality_code, url, secret, delivered_seq, attempts""",
        limit, lease_seconds,
    )


async def webhook_delivered(pool: asyncpg.Pool, webhook_id: UUID, seq: int) -> None:
    await pool.execute(
        """UPDATE municipal_webhooks SET delivered_seq = GREATEST(delivered_seq, $2), attempts = 0,
               last_error = NULL WHERE id = $1""",
        webhook_id, seq,
    )


async def release_webhook(pool: asyncpg.Pool, webhook_id: UUID) -> None:
    """End the lease of a webhook that is up to date: it is due again at the next round."""
    await pool.execute("UPDATE municipal_webhooks SET next_attempt_at = now() WHERE id = $1", webhook_id)


async def webhook_failed(pool: asyncpg.Pool, webhook_id: UUID, error: str, retry_in_seconds: float) -> None:
    await pool.execute(
        """UPDATE municipal_webhooks SET attempts = attempts + 1, last_error = $2,
               next_attempt_at = now() + make_interval(secs => $3)
           WHERE id = $1""",
        webhook_id, error[:500], retry_in_seconds,
    )

