"""The dead-letter queue of one service, kept in its own database.

A dead letter is recorded together with its copy for ``<topic>.dlq`` (through the outbox)
in one transaction, before the consumer commits the record's offset. While a key has an
unresolved dead letter on a topic, the consumer parks that key's later events behind it
(rows with status ``parked``), so they never overtake it. A replay puts the dead letter and
then its parked followers, in order, back on their original topic through the outbox, with
the same bytes, key and event id (inboxes still dedupe); each is resolved when the consumer
sees it again."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from shared.contracts import Topics
from shared.logging import describe_error
from shared.outbox import add_record

UNRESOLVED = ("dead", "parked", "replaying")


@dataclass(frozen=True)
class ConsumedRecord:
    """A consumed record as the dead-letter queue keeps it."""

    topic: str
    partition: int
    offset: int
    key: str | None
    headers: Mapping[str, str]
    body: bytes
    event_id: str | None = None
    event_type: str | None = None


async def unresolved_for_key(conn: asyncpg.Connection, consumer: str, topic: str, key: str) -> list[asyncpg.Record]:
    """The key's queue on this topic, oldest first: the dead letter, then what waits behind it.

    A record that was not even an event (no event id) blocks nothing: it has no order to keep
    and could never be recognised when replayed."""
    rows: list[asyncpg.Record] = await conn.fetch(
        """SELECT id, event_id, status FROM dead_letters
           WHERE consumer = $1 AND topic = $2 AND key = $3 AND status = ANY($4::text[])
             AND event_id IS NOT NULL
           ORDER BY id""",
        consumer,
        topic,
        key,
        list(UNRESOLVED),
    )
    return rows


async def keys_with_queue(conn: asyncpg.Connection, consumer: str, topic: str, keys: Iterable[str]) -> set[str]:
    """Of ``keys``, those with a queue on this topic (``unresolved_for_key`` is not empty), in
    one statement for a consumed batch."""
    rows = await conn.fetch(
        """SELECT DISTINCT key FROM dead_letters
           WHERE consumer = $1 AND topic = $2 AND key = ANY($3::text[]) AND status = ANY($4::text[])
             AND event_id IS NOT NULL""",
        consumer,
        topic,
        list(set(keys)),
        list(UNRESOLVED),
    )
    return {row["key"] for row in rows}


async def park(conn: asyncpg.Connection, consumer: str, record: ConsumedRecord, behind: int) -> None:
    await _insert(
        conn,
        consumer,
        record,
        status="parked",
        error_type="Parked",
        error=f"parked behind dead letter {behind} of the same key",
        attempts=0,
    )


async def record_dead_letter(
    conn: asyncpg.Connection,
    consumer: str,
    group: str,
    record: ConsumedRecord,
    error: BaseException,
    attempts: int,
) -> int:
    """Record the dead letter and queue its DLQ copy; returns the dead letter's id.

    A replayed event that fails again becomes the same dead letter again, and the followers
    replayed after it are parked behind it once more."""
    error_text = describe_error(error)[:2000]
    again: int | None = None
    if record.event_id is not None:
        again = await conn.fetchval(
            """UPDATE dead_letters SET status = 'dead', error_type = $4, error = $5,
                   attempts = attempts + $6, resolved_at = NULL
               WHERE consumer = $1 AND topic = $2 AND event_id = $3 AND status = 'replaying'
               RETURNING id""",
            consumer,
            record.topic,
            record.event_id,
            type(error).__name__,
            error_text,
            attempts,
        )
    if again is not None:
        await conn.execute(
            """UPDATE dead_letters SET status = 'parked'
               WHERE consumer = $1 AND topic = $2 AND key = $3 AND status = 'replaying'""",
            consumer,
            record.topic,
            record.key,
        )
        dead_letter_id = again
    else:
        dead_letter_id = await _insert(
            conn, consumer, record, status="dead", error_type=type(error).__name__, error=error_text, attempts=attempts
        )
    headers = {
        **record.headers,
        "dlq_error": error_text,
        "dlq_error_type": type(error).__name__,
        "dlq_origin_topic": record.topic,
        "dlq_origin_partition": str(record.partition),
        "dlq_origin_offset": str(record.offset),
        "dlq_consumer_group": group,
        "dlq_attempts": str(attempts),
        "dlq_failed_at": datetime.now(UTC).isoformat(),
    }
    await add_record(conn, Topics.dlq(record.topic), record.key, headers, record.body)
    return dead_letter_id


async def resolve_replayed(conn: asyncpg.Connection, dead_letter_id: int) -> None:
    await conn.execute("UPDATE dead_letters SET status = 'replayed', resolved_at = now() WHERE id = $1", dead_letter_id)


async def _insert(
    conn: asyncpg.Connection,
    consumer: str,
    record: ConsumedRecord,
    *,
    status: str,
    error_type: str,
    error: str,
    attempts: int,
) -> int:
    dead_letter_id: int = await conn.fetchval(
        """INSERT INTO dead_letters (topic, partition, "offset", consumer, event_id, event_type,
               error_type, error, attempts, body, key, headers, status)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id""",
        record.topic,
        record.partition,
        record.offset,
        consumer,
        record.event_id,
        record.event_type,
        error_type,
        error,
        attempts,
        record.body,
        record.key,
        dict(record.headers),
        status,
    )
    return dead_letter_id


# --- operator side -------------------------------------------------------------------


async def list_dead_letters(
    conn: asyncpg.Connection,
    *,
    topic: str | None = None,
    statuses: Sequence[str] = UNRESOLVED,
) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        """SELECT id, created_at, status, topic, partition, "offset", key, event_type, event_id,
                  error_type, error, attempts, resolved_at
           FROM dead_letters
           WHERE status = ANY($1::text[]) AND ($2::text IS NULL OR topic = $2)
           ORDER BY id""",
        list(statuses),
        topic,
    )
    return rows


async def get_dead_letter(conn: asyncpg.Connection, dead_letter_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM dead_letters WHERE id = $1", dead_letter_id)


class ReplayError(Exception):
    """The dead letter cannot be replayed (unknown, or not dead)."""


async def replay(conn: asyncpg.Connection, dead_letter_id: int) -> list[int]:
    """Put the dead letter and its parked followers back on their topic, in order; returns
    the ids replayed. Call in a transaction."""
    row = await conn.fetchrow(
        "SELECT id, topic, key, consumer, status FROM dead_letters WHERE id = $1 FOR UPDATE", dead_letter_id
    )
    if row is None:
        raise ReplayError(f"no dead letter {dead_letter_id}")
    if row["status"] != "dead":
        raise ReplayError(f"dead letter {dead_letter_id} is {row['status']}, only a dead one can be replayed")
    followers = []
    if row["key"] is not None:
        earlier = await conn.fetchval(
            """SELECT min(id) FROM dead_letters
               WHERE consumer = $1 AND topic = $2 AND key = $3 AND id < $4
                 AND status IN ('dead', 'parked') AND event_id IS NOT NULL""",
            row["consumer"],
            row["topic"],
            row["key"],
            row["id"],
        )
        if earlier is not None:  # its copy would come back behind that one and never be seen
            raise ReplayError(
                f"dead letter {earlier} of the same key comes first: replay it before "
                f"{dead_letter_id} (or replay --all)"
            )
        # Those parked behind this one, up to the key's next dead letter (which keeps its own).
        followers = await conn.fetch(
            """SELECT id FROM dead_letters d
               WHERE consumer = $1 AND topic = $2 AND key = $3 AND status = 'parked' AND id > $4
                 AND NOT EXISTS (SELECT 1 FROM dead_letters n
                                 WHERE n.consumer = $1 AND n.topic = $2 AND n.key = $3
                                   AND n.status = 'dead' AND n.id > $4 AND n.id < d.id)
               ORDER BY id FOR UPDATE""",
            row["consumer"],
            row["topic"],
            row["key"],
            row["id"],
        )
    ids = [row["id"], *(f["id"] for f in followers)]
    records = await conn.fetch(
        "SELECT id, topic, key, headers, body, event_id FROM dead_letters WHERE id = ANY($1::bigint[]) ORDER BY id",
        ids,
    )
    for record in records:
        await add_record(conn, record["topic"], record["key"], record["headers"], record["body"])
    # A record without an event id cannot be recognised when it comes back: it is done now.
    await conn.execute(
        """UPDATE dead_letters SET status = CASE WHEN event_id IS NULL THEN 'replayed' ELSE 'replaying' END,
               resolved_at = CASE WHEN event_id IS NULL THEN now() END
           WHERE id = ANY($1::bigint[])""",
        ids,
    )
    return ids


async def replay_all(conn: asyncpg.Connection, *, topic: str | None = None) -> list[int]:
    """Replay every dead letter (each with its followers); call in a transaction."""
    replayed: list[int] = []
    for row in await list_dead_letters(conn, topic=topic, statuses=("dead",)):
        replayed.extend(await replay(conn, row["id"]))
    return replayed


def describe(row: Mapping[str, Any]) -> dict[str, Any]:
    """A dead letter as the CLI shows it in full."""
    body = bytes(row["body"])
    try:
        text = body.decode()
    except UnicodeDecodeError:
        text = repr(body)
    return {**{k: v for k, v in dict(row).items() if k != "body"}, "body": text}
