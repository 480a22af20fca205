"""Use cases of the signals service, shared by the API and the pages: one way to take in a
signal (the partner API, the signal form and a confirmed self-referral all come here)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import asyncpg

from services.signals import domain, repository
from services.signals.config import SignalsSettings
from services.signals.keys import KeyHolder
from services.signals.erasure import Requester, erase
from services.signals.repository import Organisation
from services.signals.schemas import SignalIn
from services.signals.sessions import digest, new_token
from shared import auth, sealing
from shared.auth import Scope
from shared.contracts import EventType, SelfReferralConfirmationRequested, Topics
from shared.outbox import add_event, new_event


@dataclass(frozen=True)
class Intake:
    signal_id: UUID
    # The Idempotency-Key was used before with another body: nothing was stored.
    conflict: bool = False


async def intake_signal(
    conn: asyncpg.Connection,
    settings: SignalsSettings,
    keys: KeyHolder,
    organisation: Organisation,
    signal: SignalIn,
    *,
    idempotency_key: str | None = None,
    correlation_id: str | None = None,
    status_url: str | None = None,
) -> Intake:
    """Store a validated signal and its ``signal.received`` event in one transaction.

    ``status_url`` is the caregiver's own status page, given when the caregiver referred
    themselves; the id is fixed by the caller when the URL must name it (``signal.signal_id``
    is not part of the request)."""
    signal_id = uuid4()
    received_at = datetime.now(UTC)
    async with conn.transaction():
        if idempotency_key:
            fingerprint = domain.request_hash(signal)
            earlier = await repository.claim_idempotency_key(
                conn, organisation.id, idempotency_key, fingerprint, signal_id)
            if earlier is not None:
                earlier_id, earlier_hash = earlier
                return Intake(earlier_id, conflict=earlier_hash != fingerprint)
        return Intake(await _store(conn, settings, keys, organisation, signal, signal_id, received_at,
                                   correlation_id, status_url))


async def intake_with_id(
    conn: asyncpg.Connection, settings: SignalsSettings, keys: KeyHolder, organisation: Organisation, signal: SignalIn,
    signal_id: UUID, status_url: str | None,
) -> UUID:
    """``intake_signal`` for a signal whose id the caller chose (a self-referral's status link names it)."""
    async with conn.transaction():
        return await _store(conn, settings, keys, organisation, signal, signal_id, datetime.now(UTC), None, status_url)


async def _store(
    conn: asyncpg.Connection, settings: SignalsSettings, keys: KeyHolder, organisation: Organisation, signal: SignalIn,
    signal_id: UUID, received_at: datetime, correlation_id: str | None, status_url: str | None,
) -> UUID:
    pseudonym = domain.caregiver_pseudonym(settings.pseudonym_key.get_secret_value().encode(), signal, signal_id)
    # Sealed once, here, under the caregiver's data key: every later copy is ciphertext.
    key_id, data_key = await keys.for_caregiver(conn, pseudonym)
    payload = sealing.seal_signal(domain.received_event(
        signal, signal_id=signal_id, organisation=organisation, received_at=received_at, status_url=status_url,
    ), key_id, data_key)
    event = new_event(EventType.SIGNAL_RECEIVED, payload, producer=settings.service_name,
                      subject=pseudonym, correlation_id=correlation_id or str(signal_id))
    await repository.insert_signal(
        conn, signal_id=signal_id, organisation_id=organisation.id, pseudonym=pseudonym,
        municipality_code=signal.caregiver.municipality_code, source_kind=signal.source.kind,
        urgency=signal.urgency, received_at=received_at,
        body=sealing.wire_payload(payload.model_dump(mode="json"))[0],
        event_id=event.event_id,
    )
    await add_event(conn, Topics.SIGNALS, event)
    return signal_id


# --- self-referral (double opt-in) ---------------------------------------------------------

SELF_ORGANISATION = "Zelfmelding (website)"
RESIDENT_ORGANISATION = "Zorgmelding bewoner (website)"


class RateLimited(Exception):
    """Too many submissions from this address or client in the last hour."""


async def submit_self_referral(
    conn: asyncpg.Connection, settings: SignalsSettings, keys: KeyHolder, signal: SignalIn, *, email: str,
    name: str | None, language: str, client: str, concern: bool, confirm_url: Callable[[str], str],
) -> UUID:
    """Keep the submission until its address confirms, and ask notify to send the link.

    Nothing enters the pipeline yet. The limit is counted here, in one place, so a shared
    rate limiter can replace it."""
    email_digest, client_digest = digest(email.strip().lower()), digest(client)
    referral_id = uuid4()
    token, token_hash = new_token()
    async with conn.transaction():
        if await repository.recent_self_referrals(conn, email_digest, client_digest) >= settings.self_referral_per_hour:
            raise RateLimited
        await repository.add_self_referral(
            conn, id=referral_id, token_hash=token_hash, email_digest=email_digest, client_digest=client_digest,
            concern=concern, body=signal.model_dump(mode="json"),
            keep_hours=settings.self_referral_keep_hours)
        payload = SelfReferralConfirmationRequested(
            referral_id=referral_id, email=email, name=name, language=language, confirm_url=confirm_url(token),
            expires_at=datetime.now(UTC) + timedelta(hours=settings.self_referral_keep_hours), concern=concern)
        # Sealed under the data key of the caregiver the submission is about: the privileged
        # erasure of that person makes the topic's copy of the address unreadable.
        pseudonym = domain.caregiver_pseudonym(settings.pseudonym_key.get_secret_value().encode(), signal, referral_id)
        payload = sealing.seal_payload(payload, *await keys.for_caregiver(conn, pseudonym))
        await add_event(conn, Topics.SIGNALS, new_event(
            EventType.SELF_REFERRAL_CONFIRMATION_REQUESTED, payload, producer=settings.service_name,
            subject=str(referral_id), correlation_id=str(referral_id)))
    return referral_id


@dataclass(frozen=True)
class Confirmed:
    signal_id: UUID
    concern: bool


async def confirm_self_referral(
    conn: asyncpg.Connection, settings: SignalsSettings, keys: KeyHolder, token: str, status_url: Callable[[UUID], str],
) -> Confirmed | None:
    """The address confirmed: the submission becomes a signal (once, however often the link
    is followed). None when the link is unknown or its day has passed."""
    async with conn.transaction():
        row = await repository.self_referral_for_token(conn, digest(token))
        if row is None or not row["live"]:
            return None
        concern = row["concern"]
        if row["signal_id"] is not None:
            return Confirmed(row["signal_id"], concern)
        organisation = await repository.organisation_by_name(
            conn, RESIDENT_ORGANISATION if concern else SELF_ORGANISATION)
        if organisation is None:
            raise RuntimeError("the front-door organisations are missing: migration 060 creates them")
        signal = SignalIn.model_validate(row["body"])
        signal_id = uuid4()
        # A resident's concern is about someone else: no status link, nothing that contacts them.
        await intake_with_id(conn, settings, keys, organisation, signal, signal_id,
                             None if concern else status_url(signal_id))
        await repository.confirm_self_referral(conn, row["id"], signal_id)
    return Confirmed(signal_id, concern)


async def organisation_for_key(conn: asyncpg.Connection, key: str) -> Organisation | None:
    """The partner organisation that signs in to the signal form with its API key: the key
    must be live and allowed to post signals."""
    credential = await auth.credential_for_key(conn, key)
    if credential is None or Scope.INGEST not in credential.scopes:
        return None
    return await repository.organisation(conn, UUID(credential.subject))


async def purge_unconfirmed(conn: asyncpg.Connection) -> int:
    return await repository.purge_self_referrals(conn)


async def erase_own_submission(conn: asyncpg.Connection, settings: SignalsSettings, signal_id: UUID) -> None:
    """The caregiver, holding the signed link of their own self-referral, erases it: their
    self-referrals and everything that followed from them, in every service (the same
    erasure a partner uses for its own signals, on behalf of the front door). What
    professionals posted about them is theirs to withdraw or the privacy officer's to erase."""
    async with conn.transaction():
        organisation = await repository.organisation_by_name(conn, SELF_ORGANISATION)
        if organisation is None:
            raise RuntimeError("the front-door organisations are missing: migration 060 creates them")
        pseudonyms = await repository.caregivers_of(conn, pseudonyms=[], signal_ids=[signal_id],
                                                    posted_by=organisation.id)
        if not pseudonyms:
            return  # erased already, or not a self-referral
        requester = Requester(organisation.id, f"{organisation.name}: request of the caregiver", "partner")
        digest_ = domain.erasure_request_digest(requester.id, requester.scope.value, pseudonyms, None)
        if await repository.lock_erasure_request(conn, digest_) is not None:
            return
        await erase(conn, erasure_id=uuid4(), requester=requester, pseudonyms=pseudonyms,
                    identified_by="signal_ids", request_digest=digest_, requested_at=datetime.now(UTC),
                    producer=settings.service_name)
