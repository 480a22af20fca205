"""Erasure is final: a tombstone per erased caregiver keeps digests of the erased signal and
case ids, so an event about them that was still in flight is dropped instead of
re-creating data. It keeps digests of the pseudonym and the ids, not the values, so the
tombstone itself points back to nobody.

Only events whose subject is the erased pseudonym AND that name an erased id are dropped:
a signal posted later about the same person has new ids and flows. The check and the
recording serialise on an advisory lock per subject, so an event handled concurrently
with the erasure either commits before it (and the erasure removes what it wrote) or sees
the tombstone."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from uuid import UUID

import asyncpg

# Payload fields that name the signal or case an event is about (see shared.contracts).
_ID_FIELDS = ("signal_id", "last_signal_id", "case_id")


async def lock_for_erasure(conn: asyncpg.Connection, subject: str) -> None:
    """Wait for events about ``subject`` being handled now, and hold off new ones, until the
    erasure's transaction ends. Take it before locking anything else (``record_tombstone``
    does), or a handler holding that row and waiting here would deadlock with the erasure."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", subject)


async def record_tombstone(
    conn: asyncpg.Connection, subject: str, signal_ids: Iterable[UUID], case_ids: Iterable[UUID]
) -> None:
    """Call in the erasure's transaction, before deleting anything."""
    await lock_for_erasure(conn, subject)
    await conn.execute(
        "INSERT INTO tombstones (subject_digest, id_digests) VALUES ($1, $2::text[])",
        _digest(subject.encode()),
        [_digest(i.bytes) for i in [*signal_ids, *case_ids]],
    )


def _digest(value: bytes) -> str:
    return hashlib.sha256(value).hexdigest()


def erased_ids_named(payload: Mapping[str, Any]) -> list[UUID]:
    """The signal and case ids an event's payload is about."""
    ids = []
    for name in _ID_FIELDS:
        value = payload.get(name)
        try:
            ids.append(value if isinstance(value, UUID) else UUID(str(value)))
        except ValueError:
            continue
    return ids


async def is_erased(conn: asyncpg.Connection, subject: str, payload: Mapping[str, Any]) -> bool:
    """Whether the event is about something erased; call in the handling transaction."""
    ids = erased_ids_named(payload)
    if not ids:  # nothing it could re-create
        return False
    # Shared: events about one subject do not wait for each other, only for an erasure.
    await conn.execute("SELECT pg_advisory_xact_lock_shared(hashtextextended($1, 0))", subject)
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM tombstones WHERE subject_digest = $1 AND id_digests && $2::text[])",
            _digest(subject.encode()),
            [_digest(i.bytes) for i in ids],
        )
    )


async def erased_among(conn: asyncpg.Connection, events: Sequence[tuple[str, Mapping[str, Any]]]) -> list[bool]:
    """``is_erased`` for each (subject, payload) of a consumed batch: one statement takes the
    subjects' shared locks (in one order, as every batch does) and one reads their tombstones,
    instead of two statements per event. Not for a batch that itself records a tombstone."""
    named = [(subject, {_digest(i.bytes) for i in erased_ids_named(payload)}) for subject, payload in events]
    subjects = sorted({subject for subject, ids in named if ids})
    if not subjects:
        return [False] * len(events)
    await conn.execute(
        """SELECT count(pg_advisory_xact_lock_shared(hashtextextended(subject, 0)))
           FROM (SELECT unnest($1::text[]) AS subject ORDER BY 1) AS wanted""",
        subjects,
    )
    erased: dict[str, set[str]] = {}
    digests = {_digest(subject.encode()): subject for subject in subjects}
    rows = await conn.fetch(
        "SELECT subject_digest, id_digests FROM tombstones WHERE subject_digest = ANY($1::text[])", list(digests)
    )
    for row in rows:
        erased.setdefault(digests[row["subject_digest"]], set()).update(row["id_digests"])
    return [bool(ids & erased.get(subject, set())) for subject, ids in named]
