"""SQL for notifications: insert once per dedupe key, claim due ones, record the outcome."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg


async def insert_notification(conn: asyncpg.Connection, **row: Any) -> bool:
    """Insert unless the dedupe key exists; True when this call created it."""
    columns = ", ".join(row)
    placeholders = ", ".join(f"${i}" for i in range(1, len(row) + 1))
    return bool(
        await conn.fetchval(
            f"INSERT INTO notifications ({columns}) VALUES ({placeholders}) "
            "ON CONFLICT (dedupe_key) DO NOTHING RETURNING true",
            *row.values(),
        )
    )


async def claim_due(conn: asyncpg.Connection, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT * FROM notifications
           WHERE status = 'pending' AND next_attempt_at <= now()
           ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED""",
        limit,
    )


async def mark(
    conn: asyncpg.Connection, notification_id: UUID, status: str, error: str | None = None,
    retry_in_seconds: float | None = None,
) -> None:
    await conn.execute(
        """UPDATE notifications SET
               status = $2, attempts = attempts + 1, last_error = $3,
               delivered_at = CASE WHEN $2 = 'delivered' THEN now() END,
               next_attempt_at = now() + make_interval(secs => COALESCE($4, 0))
           WHERE id = $1""",
        notification_id, status, error, retry_in_seconds,
    )


async def recent(conn: asyncpg.Connection, limit: int = 200) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT id, recipient_role, channel, address, subject, status, created_at, delivered_at
           FROM notifications WHERE channel = 'email' ORDER BY created_at DESC LIMIT $1""",
        limit,
    )


async def one(conn: asyncpg.Connection, notification_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM notifications WHERE id = $1", notification_id)
