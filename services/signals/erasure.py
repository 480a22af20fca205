"""Erasure in the signals store, in one transaction, and its hand-over to the other services.

Two roles, two scopes:

- a partner organisation withdraws its OWN signals about a caregiver (scope ``signals``):
  only those signals go, everywhere; what other organisations posted about the same person
  stays and keeps flowing, because one organisation cannot decide about another's records;
- the controller's privacy officer erases the PERSON (scope ``caregiver``, GDPR art. 17):
  every signal about them, whoever posted it, and their case in every service.

The signals, their stages and idempotency keys are deleted here, and so are the retained
copies of their events; erasing the person also destroys their data key (crypto-shredding),
which leaves every remaining copy (topics, DLQs, backups) unreadable; so does a withdrawal of
the last signal about a person. One ``caregiver.erased`` per caregiver carries the erasure to the
other services. Every erasure is recorded in the append-only audit log (digests of the
pseudonyms, never the identity), and the same request twice is one erasure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from services.signals import domain, keys, repository
from shared.contracts import CaregiverErased, ErasureScope, EventType, Topics
from shared.outbox import add_event, forget_erased, new_event
from shared.tombstones import lock_for_erasure, record_tombstone


@dataclass(frozen=True)
class Requester:
    """Who asks: an organisation (for its own signals) or a privacy officer (for the person)."""

    id: UUID
    name: str
    role: str  # partner | privacy_officer

    @property
    def scope(self) -> ErasureScope:
        return ErasureScope.CAREGIVER if self.role == "privacy_officer" else ErasureScope.SIGNALS


async def erase(
    conn: asyncpg.Connection, *, erasure_id: UUID, requester: Requester, pseudonyms: list[str],
    identified_by: str, request_digest: str, requested_at: datetime, producer: str,
) -> None:
    """Erase (or withdraw, by the requester's scope) for these caregivers."""
    scope = requester.scope
    posted_by = requester.id if scope is ErasureScope.SIGNALS else None
    for pseudonym in sorted(pseudonyms):  # before the rows: see lock_for_erasure
        await lock_for_erasure(conn, pseudonym)
    signals = await repository.signals_of_caregivers(conn, pseudonyms, posted_by)
    erasures = []
    for pseudonym in pseudonyms:
        theirs = [s for s in signals if s["caregiver_pseudonym"] == pseudonym]
        # A withdrawal leaves the case: it holds other organisations' signals.
        cases = ([] if scope is ErasureScope.SIGNALS
                 else list(dict.fromkeys(s["case_id"] for s in theirs if s["case_id"])))
        erasures.append(CaregiverErased(
            erasure_id=erasure_id, caregiver_pseudonym=pseudonym, signal_ids=[s["id"] for s in theirs],
            case_ids=cases, requested_at=requested_at, requested_by=requester.id, scope=scope,
        ))
    for erased in erasures:  # first: events in flight about them are dropped from now on
        await record_tombstone(conn, erased.caregiver_pseudonym, erased.signal_ids, erased.case_ids)
    await repository.delete_signals(conn, [s["id"] for s in signals])
    # Crypto-shredding: every sealed copy of the person's data, wherever it is, is now
    # unreadable. A withdrawal keeps the key while other organisations' signals still use it;
    # when it took the last signal about the person, nothing is left to keep it for.
    remaining = {s["caregiver_pseudonym"] for s in await repository.signals_of_caregivers(conn, pseudonyms, None)}
    gone = [p for p in pseudonyms if p not in remaining]
    await keys.destroy(conn, gone)
    event_ids = []
    for erased in erasures:
        await forget_erased(conn, erased, whole_subject=erased.caregiver_pseudonym in gone)
        event = new_event(EventType.CAREGIVER_ERASED, erased, producer=producer,
                          subject=erased.caregiver_pseudonym, correlation_id=str(erasure_id))
        await add_event(conn, Topics.SIGNALS, event)
        event_ids.append(event.event_id)
    partner = requester.role == "partner"
    await repository.insert_erasure(
        conn, id=erasure_id, organisation_id=requester.id if partner else None,
        officer_id=None if partner else requester.id, role=requester.role, requester=requester.name,
        scope=scope.value, request_digest=request_digest, requested_at=requested_at, signals=len(signals),
        event_ids=event_ids, identified_by=identified_by,
        subject_digests=[domain.subject_digest(p) for p in sorted(pseudonyms)],
    )
