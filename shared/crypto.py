"""Envelope encryption of personal data (crypto-shredding).

Every caregiver has a random 256-bit data key; personal values are encrypted under it with
AES-256-GCM (``cryptography``), a random 96-bit nonce per value, and associated data that
binds the ciphertext to its key id and purpose, so a value cannot be moved to another key or
another field unnoticed. Data keys are stored only wrapped (encrypted the same way) by a
master key from settings; the master keys form a keyring (several ids, the first one
current), so the master key can be rotated by re-wrapping data keys. Destroying a data key
makes every copy of what it encrypted unreadable, wherever the copies are.

One compact, versioned text format serves both layers::

    v1.<key id>.<base64url(nonce || ciphertext+tag)>

For a personal value the key id is the data key's id; for a wrapped data key it is the
master key's id. Pure functions: no I/O here."""

from __future__ import annotations

import base64
import os
import re
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

VERSION = "v1"
_NONCE_BYTES = 12
_KEY_BYTES = 32
_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class CryptoError(Exception):
    """A value cannot be decrypted: malformed, tampered with, or under a key not held."""


class TamperedError(CryptoError):
    """Authentication failed: wrong key, wrong purpose or key id, or changed bytes."""


class UnknownMasterKeyError(CryptoError):
    """A data key is wrapped by a master key that is not in the keyring."""


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def new_key_id() -> str:
    """A random id: it names a key, and says nothing about whose it is."""
    return secrets.token_hex(16)


def _aad(key_id: str, purpose: str) -> bytes:
    return f"sts/{VERSION}|{key_id}|{purpose}".encode()


def _check_key_id(key_id: str) -> str:
    if not _KEY_ID.match(key_id):
        raise ValueError(f"a key id is 1-64 letters, digits, '-' or '_': {key_id!r}")
    return key_id


def encrypt(key: bytes, key_id: str, purpose: str, plaintext: bytes) -> str:
    """``plaintext`` under ``key`` (named ``key_id``), bound to ``purpose``."""
    nonce = os.urandom(_NONCE_BYTES)
    sealed = AESGCM(key).encrypt(nonce, plaintext, _aad(_check_key_id(key_id), purpose))
    return f"{VERSION}.{key_id}.{base64.urlsafe_b64encode(nonce + sealed).decode().rstrip('=')}"


def key_id_of(token: str) -> str:
    """The id of the key a value is encrypted under (raises CryptoError if malformed)."""
    return _parse(token)[0]


def _parse(token: str) -> tuple[str, bytes]:
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != VERSION or not _KEY_ID.match(parts[1]):
        raise CryptoError(f"not a {VERSION} envelope")
    try:
        blob = base64.urlsafe_b64decode(parts[2] + "=" * (-len(parts[2]) % 4))
    except ValueError as exc:
        raise CryptoError("envelope is not base64url") from exc
    if len(blob) < _NONCE_BYTES + 16:
        raise CryptoError("envelope too short")
    return parts[1], blob


def decrypt(key: bytes, token: str, purpose: str) -> bytes:
    key_id, blob = _parse(token)
    try:
        return AESGCM(key).decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], _aad(key_id, purpose))
    except InvalidTag as exc:
        raise TamperedError(f"value under key {key_id} does not authenticate for {purpose!r}") from exc


def _wrap_purpose(data_key_id: str) -> str:
    return f"data-key:{data_key_id}"


class MasterKeyring:
    """The master keys that wrap data keys: ``current`` wraps, any of them unwraps."""

    def __init__(self, keys: dict[str, bytes], current: str) -> None:
        for key_id, key in keys.items():
            _check_key_id(key_id)
            if len(key) != _KEY_BYTES:
                raise ValueError(f"master key {key_id!r} must be {_KEY_BYTES} bytes, is {len(key)}")
        if current not in keys:
            raise ValueError(f"current master key {current!r} is not in the keyring")
        self._keys = dict(keys)
        self.current = current

    @classmethod
    def parse(cls, spec: str) -> MasterKeyring:
        """``id:base64key[,id:base64key...]``; the first is current, the others still unwrap."""
        keys: dict[str, bytes] = {}
        for item in filter(None, (part.strip() for part in spec.split(","))):
            key_id, sep, encoded = item.partition(":")
            if not sep:
                raise ValueError("master keys are 'id:base64key', comma-separated, current first")
            try:
                keys[key_id.strip()] = base64.b64decode(encoded.strip(), validate=True)
            except ValueError as exc:
                raise ValueError(f"master key {key_id.strip()!r} is not base64") from exc
        if not keys:
            raise ValueError("no master key configured")
        return cls(keys, next(iter(keys)))

    def wrap(self, data_key_id: str, data_key: bytes) -> str:
        return encrypt(self._keys[self.current], self.current, _wrap_purpose(data_key_id), data_key)

    def unwrap(self, data_key_id: str, wrapped: str) -> bytes:
        master_id = key_id_of(wrapped)
        if master_id not in self._keys:
            raise UnknownMasterKeyError(
                f"data key {data_key_id} is wrapped by master key {master_id}, which is not configured"
            )
        return decrypt(self._keys[master_id], wrapped, _wrap_purpose(data_key_id))

    def is_current(self, wrapped: str) -> bool:
        return key_id_of(wrapped) == self.current

    def rewrap(self, data_key_id: str, wrapped: str) -> str:
        """The same data key, wrapped by the current master key (rotation)."""
        return self.wrap(data_key_id, self.unwrap(data_key_id, wrapped))
