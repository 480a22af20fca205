"""What of a signal travels and rests encrypted, and how events are sealed and opened.

A signal's personal parts are sealed once, at intake, by the signals service (the key
holder) under the caregiver's data key (``shared.crypto``). Only the routing fields below
stay plain; everything else — including any field added to the contract later — is
sealed, so new personal fields are covered without further work. Later stages forward the
sealed parts as they are (they never re-encrypt), and leave out the ``screening`` part
(``slim``): the note and the care recipient stop at screening.

``wire`` is what leaves a service (outbox, hence topics, retained rows and DLQ copies): the
personal fields of a sealed signal are removed, only the ciphertext remains. ``open_payload``
is its inverse on the consumer's side: it fetches the data key (``KeySource``) and puts the
decrypted fields back. A key that is gone (crypto-shredded) raises ``KeyErased``."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel

from shared import crypto
from shared.contracts import SEALED_VERSION, Envelope, SealedSignal, SignalReceived

P = TypeVar("P", bound=BaseModel)

# Routing fields that stay readable; the caregiver's municipality code is kept beside them.
PLAIN = frozenset({"signal_id", "organisation_id", "organisation_name", "received_at", "urgency", "consent", "sealed"})
# Only screening needs these: sealed apart, and dropped from every event after screening.
SCREENING_ONLY = ("care_recipient", "instrument", "observations", "note")
PERSONAL_PURPOSE = "signal.personal"
SCREENING_PURPOSE = "signal.screening"


class KeyErased(Exception):
    """The data key is gone: the caregiver was erased, so the event is dropped as erased."""


class KeySource(Protocol):
    """Where a service gets a data key: ``None`` when it was destroyed."""

    async def data_key(self, key_id: str, subject: str) -> bytes | None: ...

    async def prefetch(self, wanted: Mapping[str, str]) -> None:
        """Get the keys ``wanted`` (key id -> subject) in one round trip, so that the
        ``data_key`` calls that follow for them are answered from memory."""

    def forget_subject(self, subject: str) -> None: ...

    async def close(self) -> None: ...


def seal_signal(signal: SignalReceived, key_id: str, key: bytes) -> SignalReceived:
    """The signal with its personal parts encrypted into ``sealed`` (intake only)."""
    data = signal.model_dump(mode="json", exclude={"sealed"})
    screening = {name: data.pop(name) for name in SCREENING_ONLY}
    personal = {name: value for name, value in data.items() if name not in PLAIN}
    sealed = SealedSignal(
        personal=crypto.encrypt(key, key_id, PERSONAL_PURPOSE, _json(personal)),
        screening=crypto.encrypt(key, key_id, SCREENING_PURPOSE, _json(screening)),
    )
    return signal.model_copy(update={"sealed": sealed})


def seal_payload(payload: P, key_id: str, key: bytes) -> P:
    """Any other payload with a ``sealed`` field: everything but the routing fields sealed
    into its personal part (e.g. a self-referral's confirmation request)."""
    data = payload.model_dump(mode="json", exclude={"sealed"})
    personal = {name: value for name, value in data.items() if name not in PLAIN}
    sealed = SealedSignal(personal=crypto.encrypt(key, key_id, PERSONAL_PURPOSE, _json(personal)))
    return payload.model_copy(update={"sealed": sealed})


def slim(signal: SignalReceived) -> SignalReceived:
    """The signal as stages after screening get it: without the note, the care recipient,
    the instrument answers and the observations, in plain or sealed form."""
    fields = SignalReceived.model_fields
    update: dict[str, Any] = {name: fields[name].get_default(call_default_factory=True) for name in SCREENING_ONLY}
    if signal.sealed is not None:
        update["sealed"] = signal.sealed.model_copy(update={"screening": None})
    return signal.model_copy(update=update)


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _sealed_parts(value: Any, visit: Callable[[dict[str, Any]], None]) -> None:
    """Call ``visit`` on every dict in ``value`` that is a sealed signal."""
    if isinstance(value, dict):
        if value.get("sealed"):
            visit(value)
        for child in value.values():
            _sealed_parts(child, visit)
    elif isinstance(value, list):
        for child in value:
            _sealed_parts(child, visit)


def _strip(signal: dict[str, Any]) -> None:
    municipality = (signal.get("caregiver") or {}).get("municipality_code")
    for name in [n for n in signal if n not in PLAIN]:
        del signal[name]
    if municipality is not None:
        signal["caregiver"] = {"municipality_code": municipality}


def wire_payload(payload: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """``payload`` (JSON form) with every sealed signal's plaintext removed; and whether any was."""
    found: list[bool] = []

    def strip(signal: dict[str, Any]) -> None:
        _strip(signal)
        found.append(True)

    _sealed_parts(payload, strip)
    return payload, bool(found)


def wire(envelope: Envelope[Any]) -> tuple[Envelope[Any], str]:
    """The envelope as published, and its JSON: sealed signals only as ciphertext, and then
    version 2 (``SEALED_VERSION``)."""
    data = envelope.model_dump(mode="json")
    data["payload"], sealed = wire_payload(data["payload"])
    if sealed and envelope.version < SEALED_VERSION:
        envelope = envelope.model_copy(update={"version": SEALED_VERSION})
        data["version"] = SEALED_VERSION
    return envelope, json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def key_ids(payload: dict[str, Any]) -> set[str]:
    """The ids of the data keys ``open_payload`` will need for ``payload`` (a malformed token is
    left to ``open_payload`` to refuse)."""
    found: set[str] = set()

    def visit(signal: dict[str, Any]) -> None:
        sealed = signal["sealed"]
        tokens = (sealed.get("personal"), sealed.get("screening")) if isinstance(sealed, dict) else ()
        for token in tokens:
            if isinstance(token, str):
                with contextlib.suppress(crypto.CryptoError):
                    found.add(crypto.key_id_of(token))

    _sealed_parts(payload, visit)
    return found


async def open_payload(payload: dict[str, Any], keys: KeySource, subject: str) -> dict[str, Any]:
    """A received payload with its sealed signals decrypted back into their fields.
    Plaintext (version 1) payloads come back as they are."""
    found: list[dict[str, Any]] = []
    _sealed_parts(payload, found.append)
    if not found:
        return payload
    payload = json.loads(json.dumps(payload))  # a copy: the raw payload stays as received
    found.clear()
    _sealed_parts(payload, found.append)
    for signal in found:
        sealed = SealedSignal.model_validate(signal["sealed"])
        for token, purpose in ((sealed.personal, PERSONAL_PURPOSE), (sealed.screening, SCREENING_PURPOSE)):
            if token is None:
                continue
            key_id = crypto.key_id_of(token)
            key = await keys.data_key(key_id, subject)
            if key is None:
                raise KeyErased(f"data key {key_id} is gone")
            signal.update(json.loads(crypto.decrypt(key, token, purpose)))
    return payload
