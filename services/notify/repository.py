"""SQL of the notify store, as repositories a unit of work holds: notifications (once per
dedupe key, claimed for delivery), referrals and their history, partners' and consultants'
contacts, follow-ups. They return the domain's objects (``services.notify.domain``), built
from rows by column name, never database rows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

import asyncpg

from services.notify.domain import FollowUp, HistoryEntry, Notification, Referral, Referrer
from services.notify.lifecycle import OPEN
from shared.contracts import RecipientRole, ReferralStatus, ScreeningResult, SignalReceived, Topics
from shared.listener import notify
from shared.retention import Purge
from shared.uow import Repository, UnitOfWork

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

_OPEN = sorted(status.value for status in OPEN)
# The same list as SQL text: ON CONFLICT infers the partial unique index of the open referrals
# (migration 002) only from a predicate it can prove at planning time, so no parameter there.
_OPEN_SQL = ", ".join(f"'{status}'" for status in _OPEN)
# A referral the provider declined or that was called off: its service is no longer live.
_DROPPED = [ReferralStatus.REJECTED.value, ReferralStatus.CANCELLED.value]
# The rows of one caregiver's signals or cases, in every table the erasure blanks.
_ERASED = "(signal_id = ANY($1::uuid[]) OR case_id = ANY($2::uuid[]))"

T = TypeVar("T", bound="DataclassInstance")


def _insert(table: str, row: Mapping[str, Any]) -> tuple[str, list[Any]]:
    columns = ", ".join(row)
    placeholders = ", ".join(f"${i}" for i in range(1, len(row) + 1))
    return f"INSERT INTO {table} ({columns}) VALUES ({placeholders})", list(row.values())


def _of(cls: type[T], row: Mapping[str, Any], **parsed: Any) -> T:
    """``cls`` from a row by column name; columns it has no field for are left out, and
    ``parsed`` replaces raw values (a status text by its enum, JSON by its model)."""
    names = {f.name for f in fields(cls)}
    return cls(**{key: value for key, value in row.items() if key in names} | parsed)


def _referral(row: Mapping[str, Any]) -> Referral:
    return _of(
        Referral,
        row,
        status=ReferralStatus(row["status"]),
        signal=SignalReceived.model_validate(row["signal"]) if row["signal"] else None,
        result=ScreeningResult.model_validate(row["result"]) if row["result"] else None,
    )


def _follow_up(row: Mapping[str, Any]) -> FollowUp:
    return _of(FollowUp, row, signal=SignalReceived.model_validate(row["signal"]) if row["signal"] else None)


def _notification(row: Mapping[str, Any]) -> Notification:
    return _of(Notification, row, recipient_role=RecipientRole(row["recipient_role"]))


# The LISTEN/NOTIFY channel that wakes the delivery workers (shared.listener).
DELIVERY_CHANNEL = "notify_delivery"
# What a claim adds to a stored message; never inserted (breaker_key is a generated column).
_CLAIMED = {"attempts", "retry_window_from", "breaker_key", "webhook_secret"}


class Notifications:
    """Messages: stored once per dedupe key, claimed for delivery, their outcomes recorded."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def add(self, message: Notification) -> bool:
        """Insert unless the dedupe key exists; True when this call created it. A new message
        wakes the delivery workers when the transaction commits."""
        sql, args = _insert("notifications", {k: v for k, v in asdict(message).items() if k not in _CLAIMED})
        created = bool(await self._conn.fetchval(f"{sql} ON CONFLICT (dedupe_key) DO NOTHING RETURNING true", *args))
        if created:
            await notify(self._conn, DELIVERY_CHANNEL)
        return created

    async def claim_due(
        self, limit: int, lease_seconds: float, *, skip: Sequence[str] = (), only: str | None = None
    ) -> list[Notification]:
        """Claim due messages in one statement (its own short transaction): count the attempt and
        lease them. ``skip`` leaves out breaker keys whose breaker is not closed; ``only`` claims
        from one key (a half-open breaker's probe). A row whose lease ran out is due again."""
        rows = await self._conn.fetch(
            """WITH due AS (
                   SELECT id FROM notifications
                   WHERE status = 'pending' AND next_attempt_at <= now()
                     AND (lease_until IS NULL OR lease_until <= now())
                     AND breaker_key <> ALL($3::text[]) AND ($4::text IS NULL OR breaker_key = $4)
                   ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)
               UPDATE notifications n SET attempts = n.attempts + 1,
                   lease_until = now() + make_interval(secs => $2::float8)
               FROM due WHERE n.id = due.id
               RETURNING n.*,
                   (SELECT webhook_secret FROM partners p WHERE p.organisation_id = n.organisation_id)""",
            limit,
            lease_seconds,
            list(skip),
            only,
        )
        return [_notification(row) for row in rows]

    async def still_pending(self, notification_id: UUID) -> bool:
        """False once the message was erased (or finished elsewhere) after it was claimed."""
        return bool(
            await self._conn.fetchval("SELECT status = 'pending' FROM notifications WHERE id = $1", notification_id)
        )

    async def record_outcome(
        self,
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
            await self._conn.fetchval(
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

    async def oldest_pending_age(self) -> float:
        """Seconds since the oldest message still waiting to be sent was planned (0: none)."""
        return float(
            await self._conn.fetchval(
                "SELECT COALESCE(extract(epoch FROM now() - min(created_at)), 0) FROM notifications "
                "WHERE status = 'pending'"
            )
        )

    async def listing(
        self, status: str, channel: str | None, since: datetime | None, limit: int
    ) -> list[dict[str, Any]]:
        """Messages in one status, oldest first, as an operator reads them; ``since`` is when they
        failed (failed ones) or were planned (the others)."""
        rows = await self._conn.fetch(
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
        return [dict(row) for row in rows]

    async def resend_failed(
        self, ids: Sequence[UUID], since: datetime | None, channel: str | None
    ) -> list[dict[str, Any]]:
        """Make failed messages pending again, due now, with a new retry window; they keep their
        id (so the Message-ID / delivery id) and their attempt count. An erased one stays failed:
        it has no content left."""
        await notify(self._conn, DELIVERY_CHANNEL)
        rows = await self._conn.fetch(
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
        return [dict(row) for row in rows]

    async def blank_old_confirmations(self, keep_hours: float) -> int:
        """Blank the address and text of self-referral confirmation mails older than
        ``keep_hours``: an unconfirmed submission's personal data is kept a day at most, and a
        confirmed one lives on in the signal. The row stays (what was sent, when)."""
        result = await self._conn.execute(
            """UPDATE notifications SET address = NULL, subject = '', body_text = '', body_html = NULL
               WHERE template = 'selfreferral_confirmation' AND address IS NOT NULL AND status <> 'pending'
                 AND created_at < now() - make_interval(secs => $1::float8 * 3600)""",
            keep_hours,
        )
        return int(result.split()[-1])

    async def add_do_not_contact(self, address_digest: str, channel: str) -> None:
        await self._conn.execute(
            "INSERT INTO do_not_contact (address_digest, channel) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            address_digest,
            channel,
        )

    async def is_do_not_contact(self, address_digest: str) -> bool:
        return bool(
            await self._conn.fetchval("SELECT true FROM do_not_contact WHERE address_digest = $1", address_digest)
        )

    async def erase(self, signal_ids: Sequence[UUID], case_ids: Sequence[UUID]) -> None:
        """Blank what identifies the caregiver; messages not sent yet are dropped (their
        content is gone). Ids, statuses and timestamps stay for the record."""
        await self._conn.execute(
            f"""UPDATE notifications SET address = NULL, subject = '', body_text = '', body_html = NULL,
                    dedupe_key = 'erased:' || id::text, subject_key = 'erased',
                    last_error = NULL, status = CASE WHEN status = 'pending' THEN 'erased' ELSE status END
                WHERE {_ERASED}""",
            list(signal_ids),
            list(case_ids),
        )


class Referrals:
    """Provider referrals and their history."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def add(self, row: Mapping[str, Any]) -> tuple[UUID, bool]:
        """Create the referral, or find the case's open referral to the same service; (id, created)."""
        sql, args = _insert("referrals", row)
        created = await self._conn.fetchval(
            f"""{sql} ON CONFLICT (case_id, service_id)
                WHERE status IN ({_OPEN_SQL}) DO NOTHING RETURNING id""",
            *args,
        )
        if created is not None:
            return created, True
        existing = await self._conn.fetchval(
            "SELECT id FROM referrals WHERE case_id = $1 AND service_id = $2 AND status = ANY($3::text[])",
            row["case_id"],
            row["service_id"],
            _OPEN,
        )
        return existing, False

    async def get(self, referral_id: UUID, *, lock: bool = False) -> Referral | None:
        row = await self._conn.fetchrow(
            "SELECT * FROM referrals WHERE id = $1" + (" FOR UPDATE" if lock else ""), referral_id
        )
        return _referral(row) if row else None

    async def set_status(self, referral_id: UUID, change: HistoryEntry) -> Referral:
        """Give the referral the status of ``change``, kept in its history."""
        await self.add_history(referral_id, change)
        row = await self._conn.fetchrow(
            """UPDATE referrals SET status = $2, reason_code = $3, note = COALESCE($4, note), updated_at = $5
               WHERE id = $1 RETURNING *""",
            referral_id,
            change.status.value,
            change.reason_code,
            change.note,
            change.at,
        )
        return _referral(row)

    async def add_history(self, referral_id: UUID, entry: HistoryEntry) -> None:
        await self._conn.execute(
            """INSERT INTO referral_history (referral_id, status, reason_code, note, updated_by, at)
               VALUES ($1, $2, $3, $4, $5, $6)""",
            referral_id,
            entry.status.value,
            entry.reason_code,
            entry.note,
            entry.updated_by,
            entry.at,
        )

    async def history(self, referral_id: UUID) -> list[HistoryEntry]:
        rows = await self._conn.fetch(
            """SELECT status, reason_code, note, updated_by, at FROM referral_history
               WHERE referral_id = $1 ORDER BY id""",
            referral_id,
        )
        return [_of(HistoryEntry, row, status=ReferralStatus(row["status"])) for row in rows]

    async def rejected_service_ids(self, case_id: UUID) -> list[str]:
        rows = await self._conn.fetch(
            "SELECT DISTINCT service_id FROM referrals WHERE case_id = $1 AND status = $2 ORDER BY 1",
            case_id,
            ReferralStatus.REJECTED.value,
        )
        return [r["service_id"] for r in rows]

    async def was_rejected_before(self, signal_id: UUID) -> bool:
        """A proposal for a signal with a declined referral is a re-match."""
        return bool(
            await self._conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM referrals WHERE signal_id = $1 AND status = $2)",
                signal_id,
                ReferralStatus.REJECTED.value,
            )
        )

    async def for_service(self, service_id: str, status: ReferralStatus | None) -> list[Referral]:
        return await self._fetch(
            """SELECT * FROM referrals WHERE service_id = $1 AND ($2::text IS NULL OR status = $2)
               ORDER BY created_at DESC LIMIT 500""",
            service_id,
            status.value if status else None,
        )

    async def live(self, case_id: UUID) -> list[Referral]:
        """The case's referrals to services that did not decline or drop it."""
        return await self._fetch(
            "SELECT * FROM referrals WHERE case_id = $1 AND status <> ALL($2::text[]) ORDER BY created_at",
            case_id,
            _DROPPED,
        )

    async def claim_due_reminders(self, now: datetime, limit: int) -> list[Referral]:
        return await self._fetch(
            """SELECT * FROM referrals WHERE status = 'requested' AND reminded_at IS NULL AND remind_at <= $1
               ORDER BY remind_at LIMIT $2 FOR UPDATE SKIP LOCKED""",
            now,
            limit,
        )

    async def claim_due_escalations(self, now: datetime, limit: int) -> list[Referral]:
        return await self._fetch(
            """SELECT * FROM referrals WHERE status = 'requested' AND escalated_at IS NULL AND escalate_at <= $1
               ORDER BY escalate_at LIMIT $2 FOR UPDATE SKIP LOCKED""",
            now,
            limit,
        )

    async def mark_deadline(self, referral_id: UUID, column: str, at: datetime) -> None:
        if column not in ("reminded_at", "escalated_at"):  # a column name goes into the SQL below
            raise ValueError(f"not a deadline column: {column!r}")
        await self._conn.execute(f"UPDATE referrals SET {column} = $2 WHERE id = $1", referral_id, at)

    async def open_of(self, signal_ids: Sequence[UUID], case_ids: Sequence[UUID]) -> list[Referral]:
        """The open referrals of the signals or cases, locked: an erasure ends them."""
        return await self._fetch(
            f"SELECT * FROM referrals WHERE {_ERASED} AND status = ANY($3::text[]) FOR UPDATE",
            list(signal_ids),
            list(case_ids),
            _OPEN,
        )

    async def erase(self, signal_ids: Sequence[UUID], case_ids: Sequence[UUID]) -> None:
        """Blank the caregiver's signal, screening and notes; the referral and its statuses stay."""
        args = (list(signal_ids), list(case_ids))
        await self._conn.execute(
            f"UPDATE referrals SET signal = NULL, result = NULL, note = NULL, subject_key = 'erased' WHERE {_ERASED}",
            *args,
        )
        await self._conn.execute(
            f"UPDATE referral_history SET note = NULL WHERE referral_id IN (SELECT id FROM referrals WHERE {_ERASED})",
            *args,
        )

    async def _fetch(self, sql: str, *args: Any) -> list[Referral]:
        return [_referral(row) for row in await self._conn.fetch(sql, *args)]


class Contacts:
    """Who notify tells besides the caregiver and the providers: the partners (referrers) and
    each area's caregiver consultant. Provider keys are ``shared.auth`` credentials."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def partner(self, organisation_id: UUID) -> Referrer | None:
        row = await self._conn.fetchrow(
            "SELECT organisation_id, name, email, webhook_url, language FROM partners WHERE organisation_id = $1",
            organisation_id,
        )
        return Referrer(**row) if row else None

    async def upsert_partner(
        self,
        organisation_id: UUID,
        name: str,
        email: str | None,
        webhook_url: str | None,
        webhook_secret: str | None,
        language: str,
    ) -> None:
        await self._conn.execute(
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

    async def consultant_email(self, municipality_code: str) -> str | None:
        email: str | None = await self._conn.fetchval(
            "SELECT email FROM consultants WHERE municipality_code = $1", municipality_code
        )
        return email

    async def save_consultant(self, municipality_code: str, email: str, name: str | None, source: str) -> None:
        """Register (source 'registered') or learn (source 'social_map') an area's consultant;
        what the social map says never overrides a registration."""
        await self._conn.execute(
            """INSERT INTO consultants (municipality_code, email, name, source) VALUES ($1, $2, $3, $4)
               ON CONFLICT (municipality_code) DO UPDATE SET email = EXCLUDED.email, name = EXCLUDED.name,
                   source = EXCLUDED.source, updated_at = now()
               WHERE EXCLUDED.source = 'registered' OR consultants.source = 'social_map'""",
            municipality_code,
            email,
            name,
            source,
        )


class FollowUps:
    """The POM follow-up questions, one per case."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def schedule(self, row: Mapping[str, Any]) -> None:
        """One per case: the first proposals set the date; later ones do not postpone it."""
        sql, args = _insert("follow_ups", row)
        await self._conn.execute(f"{sql} ON CONFLICT (case_id) DO NOTHING", *args)

    async def cancel(self, case_id: UUID) -> None:
        """The case is closed: the caregiver is not asked whether support arrived."""
        await self._conn.execute(
            "UPDATE follow_ups SET status = 'cancelled' WHERE case_id = $1 AND status = 'scheduled'", case_id
        )

    async def claim_due(self, now: datetime, limit: int) -> list[FollowUp]:
        rows = await self._conn.fetch(
            """SELECT * FROM follow_ups WHERE status = 'scheduled' AND due_at <= $1
               ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED""",
            now,
            limit,
        )
        return [_follow_up(row) for row in rows]

    async def get(self, follow_up_id: UUID, *, lock: bool = False) -> FollowUp | None:
        row = await self._conn.fetchrow(
            "SELECT * FROM follow_ups WHERE id = $1" + (" FOR UPDATE" if lock else ""), follow_up_id
        )
        return _follow_up(row) if row else None

    async def mark_asked(self, follow_up_id: UUID, at: datetime) -> None:
        await self._conn.execute(
            "UPDATE follow_ups SET status = 'asked', asked_at = $2 WHERE id = $1", follow_up_id, at
        )

    async def record_answer(self, follow_up_id: UUID, support_arrived: bool, at: datetime) -> None:
        await self._conn.execute(
            """UPDATE follow_ups SET status = 'answered', support_arrived = $2, answered_at = $3
               WHERE id = $1""",
            follow_up_id,
            support_arrived,
            at,
        )

    async def erase(self, signal_ids: Sequence[UUID], case_ids: Sequence[UUID]) -> None:
        """Blank the caregiver's signal; a question not asked yet is not asked any more."""
        await self._conn.execute(
            f"""UPDATE follow_ups SET signal = NULL, subject_key = 'erased',
                    status = CASE WHEN status = 'scheduled' THEN 'cancelled' ELSE status END
                WHERE {_ERASED}""",
            list(signal_ids),
            list(case_ids),
        )


class NotifyUnitOfWork(UnitOfWork):
    """Notify's tables and the outbox in one transaction."""

    topic = Topics.NOTIFY
    producer = "notify"

    notifications = Repository(Notifications)
    referrals = Repository(Referrals)
    contacts = Repository(Contacts)
    follow_ups = Repository(FollowUps)

    async def erase(self, signal_ids: Sequence[UUID], case_ids: Sequence[UUID]) -> None:
        """Blank what identifies the caregiver, in every table; ids, statuses and timestamps
        stay for the record."""
        for table in (self.notifications, self.referrals, self.follow_ups):
            await table.erase(signal_ids, case_ids)


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
