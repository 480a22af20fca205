"""The access log (NEN 7513 style): who read or changed which signal, case, referral or
erasure, on whose behalf, and when. One append-only ``access_log`` table per service database
(shared migration 020); the privacy officer reads them all with
``python -m shared.cli access-log``.

A line names the actor by role and credential (a prefix of the key's SHA-256 digest, as the
key tables store it, an officer's id, or "signed-link"), the organisation, the action, and
the record by id: never a personal value, so the line may outlive the record. A change is
logged in its own transaction (no change without its line); a read, after it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

import asyncpg


class Action(StrEnum):
    READ = "read"
    CREATE = "create"
    UPDATE = "update"
    ERASE = "erase"


@dataclass(frozen=True)
class Actor:
    """Who acts: ``role`` (partner, privacy_officer, provider, consultant, link), the
    credential ``id``, the actor's ``organisation`` and, when the record is someone else's,
    ``on_behalf_of``."""

    role: str
    id: str
    organisation: str | None = None
    on_behalf_of: str | None = None


async def record(
    conn: asyncpg.Connection | asyncpg.Pool,
    actor: Actor,
    action: Action,
    subject_type: str,
    subject_ids: UUID | str | Iterable[UUID | str],
    *,
    outcome: str = "ok",
) -> None:
    """One line per subject id."""
    ids = [subject_ids] if isinstance(subject_ids, UUID | str) else list(subject_ids)
    if not ids:
        return
    await conn.execute(
        """INSERT INTO access_log (actor_role, actor_id, organisation, on_behalf_of, action, subject_type,
               subject_id, outcome)
           SELECT $1, $2, $3, $4, $5, $6, unnest($7::text[]), $8""",
        actor.role,
        actor.id,
        actor.organisation,
        actor.on_behalf_of,
        action.value,
        subject_type,
        [str(i) for i in ids],
        outcome,
    )


COLUMNS = (
    "at",
    "service",
    "actor_role",
    "actor_id",
    "organisation",
    "on_behalf_of",
    "action",
    "subject_type",
    "subject_id",
    "outcome",
)


async def entries(
    conn: asyncpg.Connection,
    *,
    subject: str | None = None,
    since: datetime | None = None,
    limit: int = 1000,
) -> Sequence[dict[str, Any]]:
    """Lines about ``subject`` (any id) since ``since``, oldest first, at most ``limit``."""
    rows = await conn.fetch(
        """SELECT * FROM (
               SELECT id, at, actor_role, actor_id, organisation, on_behalf_of, action, subject_type, subject_id,
                      outcome
               FROM access_log
               WHERE ($1::text IS NULL OR subject_id = $1) AND ($2::timestamptz IS NULL OR at >= $2)
               ORDER BY at DESC, id DESC LIMIT $3) newest
           ORDER BY at, id""",
        subject,
        since,
        limit,
    )
    return [dict(r) for r in rows]
