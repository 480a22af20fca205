"""SQL of the operators service: operators, their one-time sign-in links and sessions."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg


class OperatorsRepository:
    """Operators, their sign-in links and sessions, inside a unit of work's transaction."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def add_operator(self, name: str) -> UUID:
        """The operator of that name, created when new (issuing again gives a new link)."""
        return await self.conn.fetchval(
            """INSERT INTO operators (name) VALUES ($1)
               ON CONFLICT (name) DO UPDATE SET revoked_at = NULL RETURNING id""",
            name,
        )

    async def add_link(self, operator_id: UUID, token_hash: str, expires_at: datetime, reusable: bool) -> None:
        await self.conn.execute(
            """INSERT INTO operator_sign_in_links (token_hash, operator_id, expires_at, reusable)
               VALUES ($1, $2, $3, $4)
               ON CONFLICT (token_hash) DO UPDATE SET operator_id = $2, expires_at = $3, reusable = $4,
                   used_at = NULL""",
            token_hash,
            operator_id,
            expires_at,
            reusable,
        )

    async def use_link(self, token_hash: str, now: datetime) -> UUID | None:
        """The operator the link signs in, marking it used; None if unknown, used or expired."""
        return await self.conn.fetchval(
            """UPDATE operator_sign_in_links l SET used_at = $2
               FROM operators o
               WHERE l.token_hash = $1 AND o.id = l.operator_id AND o.revoked_at IS NULL
                 AND l.expires_at > $2 AND (l.used_at IS NULL OR l.reusable)
               RETURNING l.operator_id""",
            token_hash,
            now,
        )

    async def add_session(self, operator_id: UUID, token_hash: str, expires_at: datetime) -> None:
        await self.conn.execute(
            "INSERT INTO operator_sessions (token_hash, operator_id, expires_at) VALUES ($1, $2, $3)",
            token_hash,
            operator_id,
            expires_at,
        )

    async def operator_for_session(self, token_hash: str, now: datetime) -> str | None:
        return await self.conn.fetchval(
            """SELECT o.name FROM operator_sessions s JOIN operators o ON o.id = s.operator_id
               WHERE s.token_hash = $1 AND s.expires_at > $2 AND o.revoked_at IS NULL""",
            token_hash,
            now,
        )

    async def end_session(self, token_hash: str) -> None:
        await self.conn.execute("DELETE FROM operator_sessions WHERE token_hash = $1", token_hash)

    async def revoke(self, name: str) -> bool:
        return (
            await self.conn.fetchval(
                "UPDATE operators SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL RETURNING true",
                name,
            )
            is not None
        )
