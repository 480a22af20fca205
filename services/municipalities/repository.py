"""SQL for the municipalities store (credentials are ``shared.auth``): records waiting for release, the released
groups (each municipality's stream) and webhook subscriptions, as the domain's objects."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from services.municipalities.domain import DueWebhook, Record, StreamEvent, Webhook

_ROW_FIELDS = ("person", "arrived", "municipality_code")
_RELEASE_LOCK = 0x4D55_4E49  # any constant; this service's own database


class MunicipalStore:
    """The municipalities' tables, over a unit of work's connection (inside its transaction)
    or over the pool (the webhook delivery, which runs with no transaction open)."""

    def __init__(self, db: asyncpg.Connection | asyncpg.Pool) -> None:
        self._db = db

    # --- records waiting for release -----------------------------------------------------

    async def try_release_lock(self) -> bool:
        """Take the release's lock for this transaction, unless another replica holds it."""
        taken: bool = await self._db.fetchval("SELECT pg_try_advisory_xact_lock($1)", _RELEASE_LOCK)
        return taken

    async def add_waiting(self, record: Record) -> None:
        rest = {k: v for k, v in dataclasses.asdict(record).items() if k not in _ROW_FIELDS}
        await self._db.execute(
            """INSERT INTO waiting_records (person, arrived_at, municipality_code, record)
               VALUES ($1, $2, $3, $4)""",
            record.person,
            record.arrived,
            record.municipality_code,
            rest,
        )

    async def waiting_for_update(self) -> list[tuple[int, Record]]:
        """Every waiting record, locked until the release decision commits."""
        rows = await self._db.fetch(
            "SELECT id, person, arrived_at, municipality_code, record FROM waiting_records ORDER BY id FOR UPDATE"
        )
        found = []
        for row in rows:
            rest = dict(row["record"])
            for name in ("needs", "service_categories"):
                rest[name] = tuple(rest.get(name) or ())
            found.append(
                (
                    row["id"],
                    Record(
                        person=row["person"],
                        arrived=row["arrived_at"],
                        municipality_code=row["municipality_code"],
                        **rest,
                    ),
                )
            )
        return found

    async def delete_waiting(self, ids: list[int]) -> None:
        await self._db.execute("DELETE FROM waiting_records WHERE id = ANY($1::bigint[])", ids)

    async def forget_person(self, person: str) -> int:
        """Erasure: the person's records that still wait go; released groups were anonymous."""
        result = await self._db.execute("DELETE FROM waiting_records WHERE person = $1", person)
        return int(result.split()[-1])

    # --- the stream of released groups ---------------------------------------------------

    async def append_release(
        self, municipality_code: str, event_id: UUID, month: str, body: str, released_at: datetime
    ) -> int:
        """Add a released group to the municipality's stream; returns its sequence number.

        Call last in the transaction: the stream's row stays locked until commit."""
        seq: int = await self._db.fetchval(
            """INSERT INTO municipal_streams (municipality_code, last_seq) VALUES ($1, 1)
               ON CONFLICT (municipality_code) DO UPDATE SET last_seq = municipal_streams.last_seq + 1
               RETURNING last_seq""",
            municipality_code,
        )
        await self._db.execute(
            """INSERT INTO released_groups (municipality_code, seq, event_id, month, body, released_at)
               VALUES ($1, $2, $3, $4, $5, $6)""",
            municipality_code,
            seq,
            event_id,
            month,
            body,
            released_at,
        )
        return seq

    async def events_after(self, municipality_code: str, seq: int, limit: int) -> list[StreamEvent]:
        rows = await self._db.fetch(
            """SELECT seq, body FROM released_groups
               WHERE municipality_code = $1 AND seq > $2 ORDER BY seq LIMIT $3""",
            municipality_code,
            seq,
            limit,
        )
        return [StreamEvent(seq=r["seq"], body=r["body"]) for r in rows]

    async def last_seq_before(self, municipality_code: str, moment: datetime | None) -> int:
        """The cursor that replays releases from ``moment`` (None: from now, only new ones)."""
        if moment is None:
            found = await self._db.fetchval(
                "SELECT last_seq FROM municipal_streams WHERE municipality_code = $1", municipality_code
            )
        else:
            found = await self._db.fetchval(
                """SELECT max(seq) FROM released_groups
                   WHERE municipality_code = $1 AND released_at < $2""",
                municipality_code,
                moment,
            )
        return int(found or 0)

    async def released_in(self, municipality_code: str, months: list[str]) -> list[dict[str, Any]]:
        """The released groups of these months, for statistics."""
        rows = await self._db.fetch(
            """SELECT body FROM released_groups WHERE municipality_code = $1 AND month = ANY($2::text[])
               ORDER BY seq""",
            municipality_code,
            months,
        )
        return [json.loads(r["body"])["payload"] for r in rows]

    # --- webhooks ------------------------------------------------------------------------

    async def add_webhook(self, municipality_code: str, url: str, secret: str, delivered_seq: int) -> Webhook:
        return Webhook(
            **await self._db.fetchrow(
                """INSERT INTO municipal_webhooks (id, municipality_code, url, secret, delivered_seq)
               VALUES ($1, $2, $3, $4, $5) RETURNING id, url, delivered_seq, attempts, last_error, created_at""",
                uuid4(),
                municipality_code,
                url,
                secret,
                delivered_seq,
            )
        )

    async def webhooks_of(self, municipality_code: str) -> list[Webhook]:
        return [
            Webhook(**row)
            for row in await self._db.fetch(
                """SELECT id, url, delivered_seq, attempts, last_error, created_at FROM municipal_webhooks
               WHERE municipality_code = $1 ORDER BY created_at""",
                municipality_code,
            )
        ]

    async def delete_webhook(self, municipality_code: str, webhook_id: UUID) -> bool:
        result = await self._db.execute(
            "DELETE FROM municipal_webhooks WHERE id = $1 AND municipality_code = $2", webhook_id, municipality_code
        )
        return bool(result != "DELETE 0")

    async def lease_due_webhooks(self, limit: int, lease_seconds: float) -> list[DueWebhook]:
        """Webhooks due for delivery, leased in one statement (another replica skips them until
        the lease runs out): deliveries then run with no transaction open."""
        return [
            DueWebhook(**row)
            for row in await self._db.fetch(
                """UPDATE municipal_webhooks SET next_attempt_at = now() + make_interval(secs => $2)
               WHERE id IN (SELECT id FROM municipal_webhooks WHERE next_attempt_at <= now()
                            ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)
               RETURNING id, municipality_code, url, secret, delivered_seq, attempts""",
                limit,
                lease_seconds,
            )
        ]

    async def webhook_delivered(self, webhook_id: UUID, seq: int) -> None:
        await self._db.execute(
            """UPDATE municipal_webhooks SET delivered_seq = GREATEST(delivered_seq, $2), attempts = 0,
                   last_error = NULL WHERE id = $1""",
            webhook_id,
            seq,
        )

    async def release_webhook(self, webhook_id: UUID) -> None:
        """End the lease of a webhook that is up to date: it is due again at the next round."""
        await self._db.execute("UPDATE municipal_webhooks SET next_attempt_at = now() WHERE id = $1", webhook_id)

    async def webhook_failed(self, webhook_id: UUID, error: str, retry_in_seconds: float) -> None:
        await self._db.execute(
            """UPDATE municipal_webhooks SET attempts = attempts + 1, last_error = $2,
                   next_attempt_at = now() + make_interval(secs => $3)
               WHERE id = $1""",
            webhook_id,
            error[:500],
            retry_in_seconds,
        )
