"""Use cases of the signals service, shared by the API, the pages and the event handlers: one
way to take in a signal (the partner API, the signal form and a confirmed self-referral all
come here), one way to erase, and the stages downstream events add to a signal's timeline.

Every use case takes a ``SignalsUnitOfWork`` (a connection inside an open transaction, the
repositories on it, the outbox) and plain inputs; it never opens a connection itself.

Erasure, two roles, two scopes: a partner organisation withdraws its OWN signals about a
caregiver (scope ``signals``), and what other organisations posted stays; the controller's
privacy officer erases the PERSON (scope ``caregiver``, GDPR art. 17). The signals, their
stages, idempotency keys and retained event copies are deleted here; erasing the person (or
withdrawing the last signal about them) destroys their data key (crypto-shredding), which
leaves every remaining copy (topics, DLQs, backups) unreadable. One ``caregiver.erased`` per
caregiver carries the erasure to the other services; every erasure is in the append-only
audit log (digests of the pseudonyms, never the identity); the same request twice is one
erasure."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import structlog
from fastapi import HTTPException, status
from fastapi.exceptions import RequestValidationError

from services.signals import domain
from services.signals.config import SignalsSettings
from services.signals.domain import (
    ErasureRecord,
    Organisation,
    Requester,
    Signal,
    Stage,
    StageRecord,
)
from services.signals.keys import DataKeys
from services.signals.repository import SignalsRepository
from services.signals.schemas import ErasureIn, SignalIn
from services.signals.sessions import digest, new_token
from shared import sealing
from shared.access_log import Action, Actor
from shared.contracts import (
    ErasureScope,
    EventType,
    Language,
    SelfReferralConfirmationRequested,
    Topics,
)
from shared.crypto import MasterKeyring
from shared.instruments import load_catalogue
from shared.tombstones import lock_for_erasure
from shared.uow import Repository, UnitOfWork

log = structlog.get_logger(__name__)


class SignalsUnitOfWork(UnitOfWork):
    """The signals store, the data keys, the access log and the erasure's lock, in one
    transaction (tests/unit/test_signals_service.py has its in-memory twin)."""

    topic = Topics.SIGNALS
    producer = "signals"

    signals = Repository(SignalsRepository)
    data_keys = Repository(DataKeys)

    async def lock_caregiver(self, pseudonym: str) -> None:
        await lock_for_erasure(self.conn, pseudonym)


class Invalid(RequestValidationError):
    """A field is wrong in a way the schema cannot say (answered 422 naming the field)."""


class NotFound(HTTPException):
    def __init__(self, detail: str) -> None:
        super().__init__(status.HTTP_404_NOT_FOUND, detail)


class Forbidden(HTTPException):
    def __init__(self, detail: str) -> None:
        super().__init__(status.HTTP_403_FORBIDDEN, detail)


# --- intake ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Intake:
    signal_id: UUID
    # The Idempotency-Key was used before with another body: nothing was stored.
    conflict: bool = False


def check_signal(signal: SignalIn, organisation: Organisation | None) -> list[dict[str, Any]]:
    """What the schema cannot check: the instrument's answers and (for a partner) whether
    its organisation may post as this source kind; errors shaped like request validation's."""
    errors = domain.instrument_errors(signal, load_catalogue())
    return errors + (domain.source_kind_errors(signal, organisation) if organisation else [])


async def intake_signal(
    uow: SignalsUnitOfWork,
    settings: SignalsSettings,
    keyring: MasterKeyring,
    organisation: Organisation,
    signal: SignalIn,
    *,
    actor: Actor | None = None,
    idempotency_key: str | None = None,
    correlation_id: str | None = None,
) -> Intake:
    """Check, store a signal and queue its ``signal.received`` event; a retry with the same
    Idempotency-Key names the first signal. ``actor`` (the partner API) is access-logged."""
    if errors := check_signal(signal, organisation):
        raise Invalid(errors)
    signal_id = uuid4()
    if idempotency_key:
        fingerprint = domain.request_hash(signal)
        earlier = await uow.signals.claim_idempotency_key(organisation.id, idempotency_key, fingerprint, signal_id)
        if earlier is not None:
            earlier_id, earlier_hash = earlier
            return Intake(earlier_id, conflict=earlier_hash != fingerprint)
    await _store(uow, settings, keyring, organisation, signal, signal_id, correlation_id, None)
    if actor is not None:
        await uow.log_access(actor, Action.CREATE, "signal", signal_id)
    return Intake(signal_id)


async def _store(
    uow: SignalsUnitOfWork,
    settings: SignalsSettings,
    keyring: MasterKeyring,
    organisation: Organisation,
    signal: SignalIn,
    signal_id: UUID,
    correlation_id: str | None,
    status_url: str | None,
) -> None:
    received_at = datetime.now(UTC)
    pseudonym = domain.caregiver_pseudonym(settings.pseudonym_key.get_secret_value().encode(), signal, signal_id)
    # Sealed once, here, under the caregiver's data key: every later copy is ciphertext.
    key_id, data_key = await uow.data_keys.for_caregiver(pseudonym, keyring)
    payload = sealing.seal_signal(
        domain.received_event(
            signal,
            signal_id=signal_id,
            organisation=organisation,
            received_at=received_at,
            status_url=status_url,
        ),
        key_id,
        data_key,
    )
    event = await uow.emit(
        EventType.SIGNAL_RECEIVED, payload, subject=pseudonym, correlation_id=correlation_id or str(signal_id)
    )
    await uow.signals.insert_signal(
        signal_id=signal_id,
        organisation_id=organisation.id,
        pseudonym=pseudonym,
        municipality_code=signal.caregiver.municipality_code,
        source_kind=signal.source.kind,
        urgency=signal.urgency,
        received_at=received_at,
        body=sealing.wire_payload(payload.model_dump(mode="json"))[0],
        event_id=event.event_id,
    )


async def signal_status(
    uow: SignalsUnitOfWork,
    signal_id: UUID,
    organisation_id: UUID,
    actor: Actor | None = None,
) -> tuple[Signal, list[StageRecord]] | None:
    """A signal of this organisation with its timeline; ``actor`` (the partner API) is access-logged."""
    found = await uow.signals.signal_with_stages(signal_id, organisation_id)
    if actor is not None:
        await uow.log_access(actor, Action.READ, "signal", signal_id, outcome="ok" if found else "not_found")
    return found


# --- self-referral (double opt-in) -------------------------------------------------------------

SELF_ORGANISATION = "Zelfmelding (website)"
RESIDENT_ORGANISATION = "Zorgmelding bewoner (website)"


class RateLimited(Exception):
    """Too many submissions from this address or client in the last hour."""


async def submit_self_referral(
    uow: SignalsUnitOfWork,
    settings: SignalsSettings,
    keyring: MasterKeyring,
    signal: SignalIn,
    *,
    email: str,
    name: str | None,
    language: str,
    client: str,
    concern: bool,
    confirm_url: Callable[[str], str],
) -> UUID:
    """Keep the submission until its address confirms, and ask notify to send the link.

    Nothing enters the pipeline yet. The limit is counted here, in one place, so a shared
    rate limiter can replace it."""
    email_digest, client_digest = digest(email.strip().lower()), digest(client)
    referral_id = uuid4()
    token, token_hash = new_token()
    if await uow.signals.recent_self_referrals(email_digest, client_digest) >= settings.self_referral_per_hour:
        raise RateLimited
    await uow.signals.add_self_referral(
        id=referral_id,
        token_hash=token_hash,
        email_digest=email_digest,
        client_digest=client_digest,
        concern=concern,
        body=signal.model_dump(mode="json"),
        keep_hours=settings.self_referral_keep_hours,
    )
    payload = SelfReferralConfirmationRequested(
        referral_id=referral_id,
        email=email,
        name=name,
        language=Language(language),
        confirm_url=confirm_url(token),
        expires_at=datetime.now(UTC) + timedelta(hours=settings.self_referral_keep_hours),
        concern=concern,
    )
    # Sealed under the data key of the caregiver the submission is about: the privileged
    # erasure of that person makes the topic's copy of the address unreadable.
    pseudonym = domain.caregiver_pseudonym(settings.pseudonym_key.get_secret_value().encode(), signal, referral_id)
    payload = sealing.seal_payload(payload, *await uow.data_keys.for_caregiver(pseudonym, keyring))
    await uow.emit(
        EventType.SELF_REFERRAL_CONFIRMATION_REQUESTED,
        payload,
        subject=str(referral_id),
        correlation_id=str(referral_id),
    )
    return referral_id


@dataclass(frozen=True)
class Confirmed:
    signal_id: UUID
    concern: bool


async def confirm_self_referral(
    uow: SignalsUnitOfWork,
    settings: SignalsSettings,
    keyring: MasterKeyring,
    token: str,
    status_url: Callable[[UUID], str],
) -> Confirmed | None:
    """The address confirmed: the submission becomes a signal (once, however often the link
    is followed). None when the link is unknown or its day has passed."""
    submission = await uow.signals.self_referral_for_token(digest(token))
    if submission is None or not submission.live:
        return None
    if submission.signal_id is not None:
        return Confirmed(submission.signal_id, submission.concern)
    organisation = await uow.signals.organisation_by_name(
        RESIDENT_ORGANISATION if submission.concern else SELF_ORGANISATION
    )
    if organisation is None:
        raise RuntimeError("migration 060 creates the front-door organisations")
    signal_id = uuid4()
    # A resident's concern is about someone else: no status link, nothing that contacts them.
    await _store(
        uow,
        settings,
        keyring,
        organisation,
        SignalIn.model_validate(submission.body),
        signal_id,
        None,
        None if submission.concern else status_url(signal_id),
    )
    await uow.signals.confirm_self_referral(submission.id, signal_id)
    return Confirmed(signal_id, submission.concern)


async def purge_unconfirmed(uow: SignalsUnitOfWork) -> int:
    return await uow.signals.purge_self_referrals()


# --- erasure -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ErasureRequested:
    """The erasure made (or made before by the same request); or why none was: raised by the
    caller once the transaction committed, so the access log keeps the refusal."""

    erasure_id: UUID | None
    refused: HTTPException | None = None


async def request_erasure(
    uow: SignalsUnitOfWork,
    settings: SignalsSettings,
    erasure: ErasureIn,
    requester: Requester,
    actor: Actor,
) -> ErasureRequested:
    """Withdraw (a partner) or erase (the privacy officer); the same request again names the
    earlier erasure. Every outcome, refusals included, is access-logged."""
    key = settings.pseudonym_key.get_secret_value().encode()
    pseudonyms = domain.identity_pseudonyms(key, erasure.caregiver) if erasure.caregiver else []
    # The person as the access log names them: digests of the pseudonyms, or the signal ids.
    subject: tuple[str, Sequence[UUID | str]] = (
        ("caregiver", [domain.subject_digest(p) for p in pseudonyms])
        if erasure.caregiver
        else ("signal", erasure.signal_ids or [])
    )
    if erasure.scope is not None and erasure.scope is not requester.scope:
        if requester.role == "partner":  # a partner reaching for the person: logged
            await uow.log_access(actor, Action.ERASE, *subject, outcome="forbidden")
            return ErasureRequested(
                None,
                Forbidden(
                    "a partner key withdraws only its own signals (scope 'signals'); erasing the person across "
                    "organisations is the privacy officer's"
                ),
            )
        raise Invalid(
            [
                {
                    "loc": ("body", "scope"),
                    "type": "scope_for_role",
                    "msg": "the privacy officer's credential erases the person everywhere: scope 'caregiver'",
                }
            ]
        )
    if erasure.caregiver and not pseudonyms:
        raise Invalid(
            [
                {
                    "loc": ("body", "caregiver"),
                    "type": "missing_identity",
                    "msg": "give name, birth_year and postcode together, or email, or phone",
                }
            ]
        )
    digest_ = domain.erasure_request_digest(requester.id, requester.scope.value, pseudonyms, erasure.signal_ids)
    posted_by = requester.id if requester.role == "partner" else None
    if (earlier := await uow.signals.lock_erasure_request(digest_)) is not None:
        await uow.log_access(actor, Action.READ, "erasure", earlier)  # the same request again
        return ErasureRequested(earlier)
    caregivers = await uow.signals.caregivers_of(
        pseudonyms=pseudonyms, signal_ids=erasure.signal_ids, posted_by=posted_by
    )
    if not caregivers:  # logged too: asking about a person is an access of its own
        await uow.log_access(actor, Action.ERASE, *subject, outcome="not_found")
        return ErasureRequested(
            None,
            NotFound(
                "your organisation posted no signal about this caregiver"
                if posted_by
                else "no signal about this caregiver"
            ),
        )
    erasure_id = uuid4()
    await _erase(
        uow,
        settings,
        erasure_id=erasure_id,
        requester=requester,
        pseudonyms=caregivers,
        identified_by="identity" if erasure.caregiver else "signal_ids",
        request_digest=digest_,
    )
    await uow.log_access(actor, Action.ERASE, "erasure", erasure_id)
    await uow.log_access(actor, Action.ERASE, *subject)
    return ErasureRequested(erasure_id)


async def erasure_status(
    uow: SignalsUnitOfWork, erasure_id: UUID, requester: Requester, actor: Actor
) -> ErasureRecord | None:
    """An erasure this requester asked for (None: no such erasure; the asking is logged either way)."""
    found = await uow.signals.erasure_of(erasure_id, requester.id)
    await uow.log_access(actor, Action.READ, "erasure", erasure_id, outcome="ok" if found else "not_found")
    return found


async def erase_own_submission(uow: SignalsUnitOfWork, settings: SignalsSettings, signal_id: UUID) -> None:
    """The caregiver, holding the signed link of their own self-referral, erases it: their
    self-referrals and everything that followed from them, in every service (the same
    erasure a partner uses for its own signals, on behalf of the front door). What
    professionals posted about them is theirs to withdraw or the privacy officer's to erase."""
    organisation = await uow.signals.organisation_by_name(SELF_ORGANISATION)
    if organisation is None:
        raise RuntimeError("migration 060 creates the front-door organisations")
    pseudonyms = await uow.signals.caregivers_of(pseudonyms=[], signal_ids=[signal_id], posted_by=organisation.id)
    if not pseudonyms:
        return  # erased already, or not a self-referral
    requester = Requester(organisation.id, f"{organisation.name}: request of the caregiver", "partner")
    digest_ = domain.erasure_request_digest(requester.id, requester.scope.value, pseudonyms, None)
    if await uow.signals.lock_erasure_request(digest_) is not None:
        return
    await _erase(
        uow,
        settings,
        erasure_id=uuid4(),
        requester=requester,
        pseudonyms=pseudonyms,
        identified_by="signal_ids",
        request_digest=digest_,
    )


async def _erase(
    uow: SignalsUnitOfWork,
    settings: SignalsSettings,
    *,
    erasure_id: UUID,
    requester: Requester,
    pseudonyms: list[str],
    identified_by: str,
    request_digest: str,
) -> None:
    """Erase (or withdraw, by the requester's scope) for these caregivers."""
    scope, requested_at = requester.scope, datetime.now(UTC)
    posted_by = requester.id if scope is ErasureScope.SIGNALS else None
    for pseudonym in sorted(pseudonyms):  # before the rows: see shared.tombstones.lock_for_erasure
        await uow.lock_caregiver(pseudonym)
    signals = await uow.signals.signals_of_caregivers(pseudonyms, posted_by)
    erasures = [
        domain.caregiver_erased(erasure_id, requester, pseudonym, signals, requested_at) for pseudonym in pseudonyms
    ]
    for erased in erasures:  # first: events in flight about them are dropped from now on
        await uow.record_erasure(erased)
    await uow.signals.delete_signals([s.id for s in signals])
    # Crypto-shredding: every sealed copy of the person's data, wherever it is, is now
    # unreadable. A withdrawal keeps the key while other organisations' signals still use it;
    # when it took the last signal about the person, nothing is left to keep it for.
    remaining = {s.caregiver_pseudonym for s in await uow.signals.signals_of_caregivers(pseudonyms, None)}
    gone = [p for p in pseudonyms if p not in remaining]
    await uow.data_keys.destroy(gone)
    event_ids = []
    for erased in erasures:
        await uow.forget_retained(erased, whole_subject=erased.caregiver_pseudonym in gone)
        event = await uow.emit(
            EventType.CAREGIVER_ERASED, erased, subject=erased.caregiver_pseudonym, correlation_id=str(erasure_id)
        )
        event_ids.append(event.event_id)
    partner = requester.role == "partner"
    await uow.signals.insert_erasure(
        id=erasure_id,
        organisation_id=requester.id if partner else None,
        officer_id=None if partner else requester.id,
        role=requester.role,
        requester=requester.name,
        scope=scope.value,
        request_digest=request_digest,
        requested_at=requested_at,
        signals=len(signals),
        event_ids=event_ids,
        identified_by=identified_by,
        subject_digests=[domain.subject_digest(p) for p in sorted(pseudonyms)],
    )


# --- the status view's stages, from downstream events -------------------------------------------


async def record_stage(
    uow: SignalsUnitOfWork,
    event_id: UUID,
    signal_ids: Iterable[UUID],
    stage: Stage,
    occurred_at: datetime,
    detail: dict[str, Any],
    case_id: UUID | None = None,
) -> None:
    """Add a stage to each signal's timeline (an event redelivered adds nothing: one stage per event id)."""
    for signal_id in signal_ids:
        if not await uow.signals.add_stage(signal_id, stage, occurred_at, event_id, detail, case_id=case_id):
            # e.g. erased, or a signal from another environment: nothing to update
            log.warning("stage for unknown signal ignored", signal_id=str(signal_id), stage=stage)
