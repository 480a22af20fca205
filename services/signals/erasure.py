"""Erasure of caregivers (GDPR art. 17) in the signals store, in one transaction.

The caregiver's signals, their stages and idempotency keys are deleted, and so are the
retained copies of their events. One ``caregiver.erased`` per caregiver carries the erasure
to the other services (the municipalities service drops the caregiver's records that still
wait for release; what it released was anonymous already).

Who may erase: an organisation names a caregiver it posted a signal about (by identity or
by the signal ids it got back). The erasure then covers the caregiver everywhere,
including signals other organisations posted about the same person, because screening
merged them into one case and the right to erasure is the person's, not the signal's."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from services.signals import repository
from shared.contracts import CaregiverErased, EventType, Topics
from shared.outbox import add_event, forget_subject, new_event
from shared.tombstones import lock_for_erasure, record_tombstone


async def erase_caregivers(
    conn: asyncpg.Connection, *, erasure_id: UUID, organisation_id: UUID, pseudonyms: list[str],
    requested_at: datetime, producer: str,
) -> int:
    """Erase these caregivers; returns the number of signals erased."""
    for pseudonym in sorted(pseudonyms):  # before the rows: see lock_for_erasure
        await lock_for_erasure(conn, pseudonym)
    signals = await repository.signals_of_caregivers(conn, pseudonyms)
    signal_ids = [s["id"] for s in signals]
    for pseudonym in pseudonyms:  # first: events in flight about them are dropped from now on
        theirs = [s for s in signals if s["caregiver_pseudonym"] == pseudonym]
        await record_tombstone(conn, pseudonym, [s["id"] for s in theirs], [s["case_id"] for s in theirs if s["case_id"]])
    await repository.delete_signals(conn, signal_ids)
    event_ids = []
    for pseudonym in pseudonyms:
        theirs = [s for s in signals if s["caregiver_pseudonym"] == pseudonym]
        await forget_subject(conn, pseudonym)
        payload = CaregiverErased(
            erasure_id=erasure_id, caregiver_pseudonym=pseudonym,
            signal_ids=[s["id"] for s in theirs],
            case_ids=list(dict.fromkeys(s["case_id"] for s in theirs if s["case_id"])),
            requested_at=requested_at, requested_by=organisation_id,
        )
        event = new_event(EventType.CAREGIVER_ERASED, payload, producer=producer, subject=pseudonym,
                          correlation_id=str(erasure_id))
        await add_event(conn, Topics.SIGNALS, event)
        event_ids.append(event.event_id)
    await repository.insert_erasure(conn, erasure_id, organisation_id, requested_at, len(signal_ids), event_ids)
    return len(signal_ids)
