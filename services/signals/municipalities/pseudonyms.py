"""Pseudonyms in a municipality's stream.

Each municipality has its own key, derived as HMAC(master secret, municipality code): no key
table to keep, and two municipalities' streams cannot be linked because the same caregiver
gets a different pseudonym in each. The HMAC's input is not the caregiver's identity but a
random salt kept per caregiver (``stream_salts``): erasure deletes the salt, after which
nobody, not even the operator with the master secret, can tie the stream to the person."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from uuid import UUID

from shared.pseudonym import pseudonymise


def municipality_key(master: bytes, municipality_code: str) -> bytes:
    return hmac.new(master, f"municipality-stream:{municipality_code}".encode(), hashlib.sha256).digest()


@dataclass(frozen=True)
class StreamPseudonyms:
    caregiver: str  # the envelope's subject and Kafka key
    signal: str  # the envelope's correlation id


def stream_pseudonyms(key: bytes, salt: bytes, signal_id: UUID) -> StreamPseudonyms:
    return StreamPseudonyms(
        caregiver=pseudonymise(key, f"caregiver:{salt.hex()}"),
        signal=pseudonymise(key, f"signal:{salt.hex()}:{signal_id}"),
    )
