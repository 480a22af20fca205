"""SQL of the notify store: notifications (once per dedupe key, claimed for delivery),
referrals and their history, partners' contacts, provider keys, consultants, follow-ups."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.notify.domain import Referrer
from services.notify.lifecycle import OPEN
from shared.contracts import ReferralStatus
from shared.listener import notify
from shared.retention import Purge

_OPEN = sorted(status.value for status in OPEN)
# The same list as SQL text: ON CONFLICT infers the partial unique index of the open referrals
# (migration 002) only from a predicate it can prove at planning time, so no parameter there.
_OPEN_SQL = ", ".join(f"'{status}'" for status in _OPEN)
# A referral the provider declined or that was called off: its service is no longer live.
_DROPPED = [ReferralStatus.REJECTED.value, ReferralStatus.CANCELLED.value]


def _insert(table: str, row: dict[str, Any]) -> tuple[str, list[Any]]:
    columns = ", ".join(row)
    placeholders = ", ".join(f"${i}" for i in range(1, len(row) + 1))
    return f"INSERT INTO {table} ({columns}) VALUES ({placeholders})", list(row.values())


# --- notifications -------------------------------------------------------------------------

# The LISTEN/NOTIFY channel that wakes the delivery workers (shared.listener).
DELIVERY_CHANNEL = "notify_delivery"


async def insert_notification(conn: asyncpg.Connection, **row: Any) -> bool:
    """Insert unless the dedupe key exists; True when this call created it. A new message
    wakes the delivery workers when the transaction commits."""
    sql, args = _insert("notifications", row)
    created = bool(await conn.fetchval(f"{sql} ON CONFLICT (dedupe_key) DO NOTHING RETURNING true", *args))
    if created:
        await notify(conn, DELIVERY_CHANNEL)
    return created


async def claim_due(
    conn: asyncpg.Connection,
    limit: int,
    lease_seconds: float,
    *,
    skip: Sequence[str] = (),
    only: str | None = None,
) -> list[asyncpg.Record]:
    """Claim due messages in one statement (its own short transaction): count the attempt and
    lease them. ``skip`` leaves out breaker keys whose breaker is not closed; ``only`` claims
    from one key (a half-open breaker's probe). A row whose lease ran out is due again."""
    return await conn.fetch(
        """WITH due AS (
               SELECT id FROM notifications
               WHERE status = 'pending' AND next_attempt_at <= now()
                 AND (lease_until IS NULL OR lease_until <= now())
                 AND breaker_key <> ALL($3::text[]) AND ($4::text IS NULL OR breaker_key = $4)
               ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)
           UPDATE notifications n SET attempts = n.attempts + 1,
               lease_until = now() + make_interval(secs => $2::float8)
           FROM due WHERE n.id = due.id
           RETURNING n.*, (SELECT webhook_secret FROM partners p WHERE p.organisation_id = n.organisation_id)""",
        limit,
        lease_seconds,
        list(skip),
        only,
    )


async def still_pending(conn: asyncpg.Connection, notification_id: UUID) -> bool:
    """False once the message was erased (or finished elsewhere) after it was claimed."""
    return bool(await conn.fetchval("SELECT status = 'pending' FROM notifications WHERE id = $1", notification_id))


async def record_outcome(
    conn: asyncpg.Connection,
    notification_id: UUID,
    attempt: int,
    status: str,
    error: str | None = None,
    retry_in_seconds: float | None = None,
) -> bool:
    """Record a send's outcome and release the lease; False (nothing written) when the row is
    no longer this attempt's: erased, finished, or claimed again after the lease ran out. A
    delivery is recorded whatever attempt made it: it happened."""
    return bool(
        await conn.fetchval(
            """UPDATE notifications SET
               status = $3, last_error = $4, lease_until = NULL,
               delivered_at = CASE WHEN $3 = 'delivered' THEN now() END,
               failed_at = CASE WHEN $3 = 'failed' THEN now() END,
               next_attempt_at = now() + make_interval(secs => COALESCE($5::float8, 0))
           WHERE id = $1 AND status = 'pending' AND (attempts = $2 OR $3 = 'delivered')
           RETURNING true""",
            notification_id,
            attempt,
            status,
            error,
            retry_in_seconds,
        )
    )


async def oldest_pending_age(conn: asyncpg.Connection) -> float:
    """Seconds since the oldest message still waiting to be sent was planned (0: none)."""
    return float(
        await conn.fetchval(
            "SELECT COALESCE(extract(epoch FROM now() - min(created_at)), 0) FROM notifications "
            "WHERE status = 'pending'"
        )
    )


async def list_notifications(
    conn: asyncpg.Connection,
    status: str,
    channel: str | None,
    since: datetime | None,
    limit: int,
) -> list[asyncpg.Record]:
    """Messages in one status, oldest first; ``since`` is when they failed (failed ones) or
    were planned (the others)."""
    return await conn.fetch(
        """SELECT id, channel, recipient_role, template, attempts, created_at, next_attempt_at, lease_until,
                  failed_at, last_error FROM notifications
           WHERE status = $1 AND ($2::text IS NULL OR channel = $2)
             AND ($3::timestamptz IS NULL OR COALESCE(failed_at, created_at) >= $3)
           ORDER BY COALESCE(failed_at, created_at) LIMIT $4""",
        status,
        channel,
        since,
        limit,
    )


async def resend_failed(
    conn: asyncpg.Connection,
    ids: Sequence[UUID],
    since: datetime | None,
    channel: str | None,
) -> list[asyncpg.Record]:
    """Make failed messages pending again, due now, with a new retry window; they keep their
    id (so the Message-ID / delivery id) and their attempt count. An erased one stays failed:
    it has no content left."""
    await notify(conn, DELIVERY_CHANNEL)
    return await conn.fetch(
        """UPDATE notifications SET status = 'pending', next_attempt_at = now(), retry_window_from = now(),
               lease_until = NULL
           WHERE status = 'failed' AND subject_key <> 'erased'
             AND (id = ANY($1::uuid[]) OR ($2::timestamptz IS NOT NULL AND failed_at >= $2))
             AND ($3::text IS NULL OR channel = $3)
           RETURNING id, channel, recipient_role, template""",
        list(ids),
        since,
        channel,
    )


# --- referrals -----------------------------------------------------------------------------


async def insert_referral(conn: asyncpg.Connection, **row: Any) -> tuple[UUID, bool]:
    """Create the referral, or find the case's open referral to the same service; (id, created)."""
    sql, args = _insert("referrals", row)
    created = await conn.fetchval(
        f"""{sql} ON CONFLICT (case_id, service_id)
            WHERE status IN ({_OPEN_SQL}) DO NOTHING RETURNING id""",
        *args,
    )
    if created is not None:
        return created, True
    existing = await conn.fetchval(
        "SELECT id FROM referrals WHERE case_id = $1 AND service_id = $2 AND status = ANY($3::text[])",
        row["case_id"],
        row["service_id"],
        _OPEN,
    )
    return existing, False


async def referral(conn: asyncpg.Connection, referral_id: UUID, *, lock: bool = False) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM referrals WHERE id = $1" + (" FOR UPDATE" if lock else ""), referral_id)


async def set_referral_status(
    conn: asyncpg.Connection,
    referral_id: UUID,
    status: str,
    reason_code: str | None,
    note: str | None,
    updated_by: str,
    at: datetime,
) -> asyncpg.Record:
    await conn.execute(
        """INSERT INTO referral_history (referral_id, status, reason_code, note, updated_by, at)
           VALUES ($1, $2, $3, $4, $5, $6)""",
        referral_id,
        status,
        reason_code,
        note,
        updated_by,
        at,
    )
    return await conn.fetchrow(
        """UPDATE referrals SET status = $2, reason_code = $3, note = COALESCE($4, note), updated_at = $5
           WHERE id = $1 RETURNING *""",
        referral_id,
        status,
        reason_code,
        note,
        at,
    )


async def add_history(
    conn: asyncpg.Connection,
    referral_id: UUID,
    status: str,
    updated_by: str,
    at: datetime,
    note: str | None = None,
) -> None:
    await conn.execute(
        "INSERT INTO referral_history (referral_id, status, note, updated_by, at) VALUES ($1, $2, $3, $4, $5)",
        referral_id,
        status,
        note,
        updated_by,
        at,
    )


async def history(conn: asyncpg.Connection, referral_id: UUID) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT status, reason_code, note, updated_by, at FROM referral_history
           WHERE referral_id = $1 ORDER BY id""",
        referral_id,
    )


async def rejected_service_ids(conn: asyncpg.Connection, case_id: UUID) -> list[str]:
    rows = await conn.fetch(
        "SELECT DISTINCT service_id FROM referrals WHERE case_id = $1 AND status = $2 ORDER BY 1",
        case_id,
        ReferralStatus.REJECTED.value,
    )
    return [r["service_id"] for r in rows]


async def was_rejected_before(conn: asyncpg.Connection, signal_id: UUID) -> bool:
    """A proposal for a signal with a declined referral is a re-match."""
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM referrals WHERE signal_id = $1 AND status = $2)",
            signal_id,
            ReferralStatus.REJECTED.value,
        )
    )


async def referrals_for_service(
    conn: asyncpg.Connection,
    service_id: str,
    status: str | None,
) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT * FROM referrals WHERE service_id = $1 AND ($2::text IS NULL OR status = $2)
           ORDER BY created_at DESC LIMIT 500""",
        service_id,
        status,
    )


async def live_services(conn: asyncpg.Connection, case_id: UUID) -> list[asyncpg.Record]:
    """The services a case was referred to that did not decline or drop it."""
    return await conn.fetch(
        """SELECT service_id, service_name, organization_name, consultant FROM referrals
           WHERE case_id = $1 AND status <> ALL($2::text[]) ORDER BY created_at""",
        case_id,
        _DROPPED,
    )


async def claim_due_reminders(conn: asyncpg.Connection, now: datetime, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT * FROM referrals WHERE status = 'requested' AND reminded_at IS NULL AND remind_at <= $1
           ORDER BY remind_at LIMIT $2 FOR UPDATE SKIP LOCKED""",
        now,
        limit,
    )


async def claim_due_escalations(conn: asyncpg.Connection, now: datetime, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT * FROM referrals WHERE status = 'requested' AND escalated_at IS NULL AND escalate_at <= $1
           ORDER BY escalate_at LIMIT $2 FOR UPDATE SKIP LOCKED""",
        now,
        limit,
    )


async def mark_deadline(conn: asyncpg.Connection, referral_id: UUID, column: str, at: datetime) -> None:
    if column not in ("reminded_at", "escalated_at"):  # a column name goes into the SQL below
        raise ValueError(f"not a deadline column: {column!r}")
    await conn.execute(f"UPDATE referrals SET {column} = $2 WHERE id = $1", referral_id, at)


# --- partners and consultants (provider keys are shared.auth credentials) -----------------------


async def partner(conn: asyncpg.Connection, organisation_id: UUID) -> Referrer | None:
    row = await conn.fetchrow(
        "SELECT organisation_id, name, email, webhook_url, language FROM partners WHERE organisation_id = $1",
        organisation_id,
    )
    return Referrer(**row) if row else None


async def upsert_partner(
    conn: asyncpg.Connection,
    organisation_id: UUID,
    name: str,
    email: str | None,
    webhook_url: str | None,
    webhook_secret: str | None,
    language: str,
) -> None:
    await conn.execute(
        """INSERT INTO partners (organisation_id, name, email, webhook_url, webhook_secret, language)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (organisation_id) DO UPDATE SET name = EXCLUDED.name, email = EXCLUDED.email,
               webhook_url = EXCLUDED.webhook_url, webhook_secret = EXCLUDED.webhook_secret,
               language = EXCLUDED.language, updated_at = now()""",
        organisation_id,
        name,
        email,
        webhook_url,
        webhook_secret,
        language,
    )


async def consultant_email(conn: asyncpg.Connection, municipality_code: str) -> str | None:
    return await conn.fetchval("SELECT email FROM consultants WHERE municipality_code = $1", municipality_code)


async def save_consultant(
    conn: asyncpg.Connection,
    municipality_code: str,
    email: str,
    name: str | None,
    source: str,
) -> None:
    """Register (source 'registered') or learn (source 'social_map') an area's consultant;
    what the social map says never overrides a registration."""
    await conn.execute(
        """INSERT INTO consultants (municipality_code, email, name, source) VALUES ($1, $2, $3, $4)
           ON CONFLICT (municipality_code) DO UPDATE SET email = EXCLUDED.email, name = EXCLUDED.name,
               source = EXCLUDED.source, updated_at = now()
           WHERE EXCLUDED.source = 'registered' OR consultants.source = 'social_map'""",
        municipality_code,
        email,
        name,
        source,
    )


# --- follow-ups ----------------------------------------------------------------------------


async def schedule_follow_up(conn: asyncpg.Connection, **row: Any) -> None:
    """One per case: the first proposals set the date; later ones do not postpone it."""
    sql, args = _insert("follow_ups", row)
    await conn.execute(f"{sql} ON CONFLICT (case_id) DO NOTHING", *args)


async def cancel_follow_up(conn: asyncpg.Connection, case_id: UUID) -> None:
    """The case is closed: the caregiver is not asked whether support arrived."""
    await conn.execute(
        "UPDATE follow_ups SET status = 'cancelled' WHERE case_id = $1 AND status = 'scheduled'", case_id
    )


async def claim_due_follow_ups(conn: asyncpg.Connection, now: datetime, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT * FROM follow_ups WHERE status = 'scheduled' AND due_at <= $1
           ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED""",
        now,
        limit,
    )


async def follow_up(conn: asyncpg.Connection, follow_up_id: UUID, *, lock: bool = False) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM follow_ups WHERE id = $1" + (" FOR UPDATE" if lock else ""), follow_up_id)


async def mark_follow_up_asked(conn: asyncpg.Connection, follow_up_id: UUID, at: datetime) -> None:
    await conn.execute("UPDATE follow_ups SET status = 'asked', asked_at = $2 WHERE id = $1", follow_up_id, at)


async def record_follow_up_answer(
    conn: asyncpg.Connection,
    follow_up_id: UUID,
    support_arrived: bool,
    at: datetime,
) -> None:
    await conn.execute(
        """UPDATE follow_ups SET status = 'answered', support_arrived = $2, answered_at = $3
           WHERE id = $1""",
        follow_up_id,
        support_arrived,
        at,
    )


# --- erasure -------------------------------------------------------------------------------


async def open_referrals(
    conn: asyncpg.Connection,
    signal_ids: Sequence[UUID],
    case_ids: Sequence[UUID],
) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT * FROM referrals WHERE (signal_id = ANY($1::uuid[]) OR case_id = ANY($2::uuid[]))
           AND status = ANY($3::text[]) FOR UPDATE""",
        list(signal_ids),
        list(case_ids),
        _OPEN,
    )


async def erase(conn: asyncpg.Connection, signal_ids: Sequence[UUID], case_ids: Sequence[UUID]) -> None:
    """Blank what identifies the caregiver; ids, statuses and timestamps stay for the record.
    Messages not sent yet are dropped: their content is gone."""
    args = (list(signal_ids), list(case_ids))
    where = "(signal_id = ANY($1::uuid[]) OR case_id = ANY($2::uuid[]))"
    await conn.execute(
        f"""UPDATE notifications SET address = NULL, subject = '', body_text = '', body_html = NULL,
                dedupe_key = 'erased:' || id::text, subject_key = 'erased',
                last_error = NULL, status = CASE WHEN status = 'pending' THEN 'erased' ELSE status END
            WHERE {where}""",
        *args,
    )
    await conn.execute(
        f"UPDATE referrals SET signal = NULL, result = NULL, note = NULL, subject_key = 'erased' WHERE {where}",
        *args,
    )
    await conn.execute(
        f"""UPDATE referral_history SET note = NULL WHERE referral_id IN (SELECT id FROM referrals WHERE {where})""",
        *args,
    )
    await conn.execute(
        f"""UPDATE follow_ups SET signal = NULL, subject_key = 'erased',
                status = CASE WHEN status = 'scheduled' THEN 'cancelled' ELSE status END
            WHERE {where}""",
        *args,
    )


def retention_purges(settings: Any) -> list[Purge]:
    """Sent or failed messages (their text holds personal data) and finished follow-ups go
    after ``retention_notification_days``; a referral nothing happened to for
    ``retention_referral_days`` goes with its history. A message still pending stays."""
    return [
        Purge(
            "notifications",
            settings.retention_notification_days,
            """
            DELETE FROM notifications WHERE id IN (
                SELECT id FROM notifications WHERE status <> 'pending' AND created_at < $1 LIMIT $2)
            RETURNING 1""",
        ),
        Purge(
            "follow_ups",
            settings.retention_notification_days,
            """
            DELETE FROM follow_ups WHERE id IN (
                SELECT id FROM follow_ups WHERE status <> 'scheduled' AND created_at < $1 LIMIT $2)
            RETURNING 1""",
        ),
        Purge(
            "referrals",
            settings.retention_referral_days,
            """
            WITH gone AS (SELECT id FROM referrals WHERE updated_at < $1
                          ORDER BY updated_at LIMIT $2 FOR UPDATE SKIP LOCKED),
                 history AS (DELETE FROM referral_history WHERE referral_id IN (SELECT id FROM gone))
            DELETE FROM referrals WHERE id IN (SELECT id FROM gone) RETURNING 1""",
        ),
    ]


async def blank_old_confirmations(conn: asyncpg.Connection, keep_hours: float) -> int:
    """Blank the address and text of self-referral confirmation mails older than
    ``keep_hours``: an unconfirmed submission's personal data is kept a day at most, and a
    confirmed one lives on in the signal. The row stays (what was sent, when)."""
    result = await conn.execute(
        """UPDATE notifications SET address = NULL, subject = '', body_text = '', body_html = NULL
           WHERE template = 'selfreferral_confirmation' AND address IS NOT NULL AND status <> 'pending'
             AND created_at < now() - make_interval(secs => $1::float8 * 3600)""",
        keep_hours,
    )
    return int(result.split()[-1])


async def add_do_not_contact(conn: asyncpg.Connection, address_digest: str, channel: str) -> None:
    await conn.execute(
        "INSERT INTO do_not_contact (address_digest, channel) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        address_digest,
        channel,
    )


async def is_do_not_contact(conn: asyncpg.Connection, address_digest: str) -> bool:
    return bool(await conn.fetchval("SELECT true FROM do_not_contact WHERE address_digest = $1", address_digest))
