"""Abuse limits: requests per credential per minute, counted in the service's database so
that every instance shares the count, and a cap on concurrent streams per credential.

The rate is a fixed one-minute window per bucket (a credential and the scope it used),
counted with one upsert; over the limit the caller gets ``429`` with ``Retry-After`` (the
seconds until the window turns). Old windows are deleted now and then by the same calls."""

from __future__ import annotations

import math
import random
from collections import defaultdict
from typing import Any

import asyncpg
from fastapi import HTTPException, status
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

WINDOW_SECONDS = 60
_PURGE_CHANCE = 0.01


async def hit(conn: asyncpg.Connection, bucket: str, limit: int) -> int | None:
    """Count one request in ``bucket``; None when within ``limit``, else seconds to wait."""
    hits, remaining = await conn.fetchrow(
        """INSERT INTO rate_limit_windows (bucket, window_start, hits)
           VALUES ($1, to_timestamp(floor(extract(epoch FROM clock_timestamp()) / $2) * $2), 1)
           ON CONFLICT (bucket, window_start) DO UPDATE SET hits = rate_limit_windows.hits + 1
           RETURNING hits,
                     extract(epoch FROM window_start + make_interval(secs => $2) - clock_timestamp())""",
        bucket,
        WINDOW_SECONDS,
    )
    if random.random() < _PURGE_CHANCE:  # noqa: S311 - spreads the purge over requests; not a secret
        await conn.execute("DELETE FROM rate_limit_windows WHERE window_start < now() - interval '1 hour'")
    return None if hits <= limit else max(1, math.ceil(remaining))


class StreamCap:
    """At most ``limit`` open streams per credential in this process (429 past it).

    Per process: a stream holds a connection and a database poller of this process, which is
    what the cap protects; with several instances each enforces it."""

    def __init__(self, limit: int, retry_after: int = 5) -> None:
        self.limit = limit
        self.retry_after = retry_after
        self.open: dict[str, int] = defaultdict(int)

    def acquire(self, owner: str) -> None:
        if self.open[owner] >= self.limit:
            raise HTTPException(
                status.HTTP_429_TOO_MANY_REQUESTS,
                f"at most {self.limit} open streams per credential: close one first",
                headers={"Retry-After": str(self.retry_after)},
            )
        self.open[owner] += 1

    def release(self, owner: str) -> None:
        self.open[owner] -= 1
        if self.open[owner] <= 0:
            del self.open[owner]


class CappedStreamingResponse(StreamingResponse):
    """A streaming response that gives its slot back however the stream ends (finished,
    client gone, server stopping), even when it never started."""

    def __init__(self, content: Any, cap: StreamCap, owner: str, **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._cap, self._owner = cap, owner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._cap.release(self._owner)
