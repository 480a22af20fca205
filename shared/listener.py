"""Wake a background loop the moment a transaction commits work for it: PostgreSQL's
LISTEN/NOTIFY. The writer calls ``notify(conn, channel)`` inside its transaction (delivered
only on commit, to every instance listening); the loop's ``Listener`` holds one pooled
connection that LISTENs and calls back. Polling stays as the safety net: a NOTIFY sent while
nobody listened (a database restart) is covered by the loop's next round."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import asyncpg
import structlog

log = structlog.get_logger(__name__)


async def notify(conn: asyncpg.Connection, channel: str) -> None:
    """Wake the listeners of ``channel`` when this transaction commits."""
    await conn.execute("SELECT pg_notify($1, '')", channel)


class Listener:
    """One LISTEN connection on ``channel`` that calls ``wake`` on every NOTIFY, and also when
    the connection is lost, so the loop re-listens at once rather than after its interval."""

    def __init__(self, pool: Callable[[], asyncpg.Pool], channel: str, wake: Callable[[], None]) -> None:
        self._pool = pool
        self._channel = channel
        self._wake = wake
        self._conn: asyncpg.Connection | None = None

    def _on_notify(self, *_: Any) -> None:
        self._wake()

    async def ensure(self) -> None:
        """(Re-)open the LISTEN connection when it is gone, e.g. after a database restart."""
        if self._listening():
            return
        await self.close()
        conn = await self._pool().acquire()
        try:
            await conn.add_listener(self._channel, self._on_notify)
            conn.add_termination_listener(self._on_notify)
        except BaseException:
            await self._pool().release(conn)
            raise
        self._conn = conn
        log.info("listening", channel=self._channel)

    def _listening(self) -> bool:
        try:
            return self._conn is not None and not self._conn.is_closed()
        except asyncpg.InterfaceError:  # the pool took back the connection when it died
            return False

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        with contextlib.suppress(Exception):
            await conn.remove_listener(self._channel, self._on_notify)
        with contextlib.suppress(Exception):
            await self._pool().release(conn)
